"""Moving averages against closed forms and step-by-step loops."""

import numpy as np
import pytest

from fashion_optim import ewma as E

BETAS = [0.0, 0.5, 0.9, 0.99, 0.999]


def naive_ewma(x, beta):
    m = np.zeros(x.shape[1:])
    out = np.empty(x.shape)
    for t in range(x.shape[0]):
        m = beta * m + (1 - beta) * x[t]
        out[t] = m
    return out


def naive_sma(x, window):
    return np.stack([x[max(0, t - window + 1) : t + 1].mean(axis=0) for t in range(x.shape[0])])


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("beta", BETAS)
def test_constant_series_closed_forms(beta):
    c, n_steps = 3.7, 500
    x = np.full(n_steps, c)
    t = np.arange(1, n_steps + 1)
    np.testing.assert_allclose(E.ewma(x, beta), c * (1 - beta**t), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(E.bias_corrected(x, beta), c, rtol=1e-12, atol=0)


@pytest.mark.parametrize("beta", BETAS)
def test_alpha_and_beta_agree(rng, beta):
    x = rng.normal(size=(300, 3))
    np.testing.assert_array_equal(E.ewma(x, beta), E.ewma(x, beta=beta))
    np.testing.assert_allclose(E.ewma(x, alpha=1 - beta), E.ewma(x, beta), rtol=0, atol=1e-15)


# Lengths around the internal block size, where the recursion crosses blocks.
@pytest.mark.parametrize("n_steps", [1, 2, 127, 128, 129, 1000])
@pytest.mark.parametrize("beta", BETAS)
def test_ewma_equals_loop(rng, n_steps, beta):
    x = rng.normal(size=(n_steps, 4))
    np.testing.assert_allclose(E.ewma(x, beta), naive_ewma(x, beta), rtol=0, atol=1e-13)
    np.testing.assert_allclose(E.ewma(x[:, 0], beta), naive_ewma(x[:, 0], beta), atol=1e-13)


def test_ewma_shapes_and_inputs():
    x = np.arange(24.0).reshape(6, 2, 2)
    np.testing.assert_allclose(E.ewma(x, 0.7), naive_ewma(x, 0.7), atol=1e-13)
    assert E.ewma([1, 2, 3], 0.5).dtype == np.float64  # integers are promoted
    assert E.ewma(np.zeros((0, 3)), 0.9).shape == (0, 3)
    assert E.sma(np.zeros((0, 3)), 4).shape == (0, 3)


def test_ewma_stays_finite_on_long_series():
    # A one-shot beta**t * cumsum(x * beta**-t) overflows here (0.5**-20000).
    x = np.ones(20_000)
    m = E.ewma(x, 0.5)
    assert np.isfinite(m).all()
    np.testing.assert_allclose(m[-1], 1.0, rtol=1e-15)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("t", [1, 2, 10, 200])
def test_weights_sum_and_reproduce_ewma(rng, beta, t):
    w = E.ewma_weights(beta, t)
    assert w.shape == (t,)
    np.testing.assert_allclose(w.sum(), 1 - beta**t, rtol=1e-12)
    x = rng.normal(size=(t, 3))
    np.testing.assert_allclose(E.ewma(x, beta)[t - 1], w @ x, rtol=0, atol=1e-13)


def test_weights_newest_last():
    np.testing.assert_array_equal(E.ewma_weights(0.5, 3), [0.125, 0.25, 0.5])


def test_bias_corrected_first_value_is_first_input(rng):
    x = rng.normal(size=(50, 3))
    np.testing.assert_allclose(E.bias_corrected(x, 0.9)[0], x[0], rtol=1e-14)
    t = np.arange(1, 51)[:, None]
    np.testing.assert_allclose(E.bias_corrected(x, 0.9), naive_ewma(x, 0.9) / (1 - 0.9**t))


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
def test_age_against_truncated_sum(beta):
    k = np.arange(20_000)  # 0.99**20000 ~ 2e-88: the tail is negligible
    weights = (1 - beta) * beta**k
    age = E.ewma_age(beta)
    assert isinstance(age, float)
    np.testing.assert_allclose(age, np.sum(weights * k), rtol=1e-10, atol=1e-15)
    # The quoted "about 1/(1 - beta) steps" counts the current value as age 1.
    np.testing.assert_allclose(age + 1, 1 / (1 - beta), rtol=1e-12)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.99])
def test_sma_window_has_same_age(beta):
    n = E.sma_window_for_age(beta)
    assert isinstance(n, float)
    np.testing.assert_allclose(n, (1 + beta) / (1 - beta), rtol=1e-12)
    if n.is_integer():  # 1, 3, 19, 199: the SMA's ages 0..n-1 averaged directly
        np.testing.assert_allclose(np.arange(int(n)).mean(), E.ewma_age(beta), rtol=1e-12)
    np.testing.assert_allclose((n - 1) / 2, E.ewma_age(beta), rtol=1e-12)


@pytest.mark.parametrize("n_steps", [1, 5, 40])
@pytest.mark.parametrize("window", [1, 2, 3, 7, 40, 100])
def test_sma_equals_loop(rng, n_steps, window):
    x = rng.normal(size=(n_steps, 3))
    np.testing.assert_allclose(E.sma(x, window), naive_sma(x, window), rtol=0, atol=1e-14)
    np.testing.assert_allclose(E.sma(x[:, 1], window), naive_sma(x[:, 1], window), atol=1e-14)


def test_sma_keeps_precision_under_a_large_offset(rng):
    # Differencing a running sum of 1e8-sized values would lose about 1e-6 here.
    x = 1e8 + rng.normal(size=5000)
    np.testing.assert_allclose(E.sma(x, 10), naive_sma(x, 10), rtol=0, atol=1e-7)


@pytest.mark.parametrize("beta", [-0.1, 1.0, 1.5, float("nan")])
@pytest.mark.parametrize(
    "call",
    [
        lambda b: E.ewma([1.0], b),
        lambda b: E.bias_corrected([1.0], b),
        lambda b: E.ewma_weights(b, 3),
        E.ewma_age,
        E.sma_window_for_age,
    ],
)
def test_beta_out_of_range(call, beta):
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\), got "):
        call(beta)


def test_beta_message_names_the_value():
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\), got 1\.5"):
        E.ewma([1.0], 1.5)


@pytest.mark.parametrize("alpha", [0.0, -0.5, 1.5])
def test_alpha_out_of_range(alpha):
    with pytest.raises(ValueError, match=rf"alpha must be in \(0, 1\], got {alpha}"):
        E.ewma([1.0], alpha=alpha)


def test_exactly_one_of_beta_and_alpha():
    with pytest.raises(ValueError, match=r"exactly one of beta .* or alpha"):
        E.ewma([1.0])
    with pytest.raises(ValueError, match=r"got beta=0\.9 and alpha=0\.1"):
        E.ewma([1.0], 0.9, alpha=0.1)


@pytest.mark.parametrize("window", [0, -3])
def test_window_at_least_one(window):
    with pytest.raises(ValueError, match=rf"window must be an integer >= 1, got {window}"):
        E.sma([1.0, 2.0], window)


def test_window_must_be_an_integer():
    with pytest.raises(TypeError, match=r"window must be an integer >= 1, got 2\.5 of type float"):
        E.sma([1.0, 2.0], 2.5)


def test_t_at_least_one():
    with pytest.raises(ValueError, match="t must be an integer >= 1, got 0"):
        E.ewma_weights(0.9, 0)


def test_scalar_input_rejected():
    with pytest.raises(ValueError, match="at least one dimension"):
        E.ewma(1.0, 0.9)
