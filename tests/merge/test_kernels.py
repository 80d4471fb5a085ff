"""Every registered kernel against its formula, written here independently, on random tensors.

Parametrised over the registry: a new method fails `test_every_method_has_a_formula` until a
formula is added below. Stochastic kernels are reproduced by seeding torch the way the registry
does (`tensor_seed(seed, name)`) and drawing the same Bernoulli masks in input order. Where mergekit
defines a method differently from its paper (e.g. DARE rescales by the L1 norm, not 1/p), the
formula follows mergekit, because that is the method the recipe names.
"""

from __future__ import annotations

import pytest
import torch

from zoo.merge.method import tensor_seed
from zoo.merge.registry import get_method, list_methods

NAME = "encoder.layer.0.attention.self.query.weight"
SEED = 7
EPS_RESCALE = 1e-7


def inputs(n: int, shape=(6, 10), scale=0.1, seed=0):
    """A base and n fine-tuned tensors (base + noise), float64 for exact comparisons."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(shape, generator=gen, dtype=torch.float64)
    return base, [
        base + scale * torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(n)
    ]


# ---- formulas ---------------------------------------------------------------------------------


def f_linear(xs, w, normalize=True):
    total = sum(wi * x for wi, x in zip(w, xs))
    return total / sum(w) if normalize else total


def f_multislerp(xs, w, base=None, normalize=True):
    vs = [x - base if base is not None else x for x in xs]
    a = torch.tensor(w, dtype=torch.float64)
    a = a / a.sum() if normalize else a
    flat = [v.reshape(-1) for v in vs]
    norms = [f.norm() for f in flat]
    units = [f / n for f, n in zip(flat, norms)]
    mean = sum(ai * u for ai, u in zip(a, units))
    mean = mean / mean.norm()
    tangent = sum(ai * (u - (u @ mean) * mean) for ai, u in zip(a, units))
    theta = tangent.norm()
    point = mean * torch.cos(theta) + tangent * torch.sin(theta) / theta
    out = (sum(ai * n for ai, n in zip(a, norms)) * point).reshape(xs[0].shape)
    return out + base if base is not None else out


def f_slerp(t, p, q):
    a, b = p.reshape(-1), q.reshape(-1)
    cos = (a / a.norm()) @ (b / b.norm())
    if abs(cos) > 0.9995:
        return (1 - t) * p + t * q
    omega = torch.arccos(cos)
    return (torch.sin((1 - t) * omega) * p + torch.sin(t * omega) * q) / torch.sin(omega)


def f_nuslerp(xs, w, base=None):
    t = w[1] / (w[0] + w[1])
    if base is None:
        return f_slerp(t, xs[0], xs[1])
    return base + f_slerp(t, xs[0] - base, xs[1] - base)


def topk_magnitude(tau, density):
    k = max(1, int(density * tau.numel()))
    keep = torch.zeros(tau.numel(), dtype=torch.bool)
    keep[tau.abs().reshape(-1).argsort(descending=True)[:k]] = True
    return tau * keep.reshape(tau.shape)


def outliers_pruned(tau, density, gamma):
    n = tau.numel()
    keep_n, top_n = int(density * n), int(gamma * n)
    low = max(0, n - keep_n - top_n)
    order = tau.abs().reshape(-1).argsort()
    keep = torch.zeros(n, dtype=torch.bool)
    keep[order[low : low + keep_n]] = True
    return tau * keep.reshape(tau.shape)


def l1_rescaled(tau, kept):
    before, after = tau.abs().sum(), kept.abs().sum()
    return kept if before < EPS_RESCALE or after < EPS_RESCALE else kept * (before / after)


def bernoulli_dropped(tau, density):
    """Drop-and-rescale in float32, as mergekit does on the CPU."""
    mask = torch.bernoulli(torch.full(tau.shape, density, dtype=torch.float32))
    return l1_rescaled(tau.float(), tau.float() * mask).to(tau.dtype)


def della_dropped(tau, density, epsilon):
    rows = tau.reshape(1, -1) if tau.dim() < 2 else tau
    ranks = rows.abs().argsort(dim=1).argsort(dim=1).to(torch.float32)  # 0 = smallest
    probs = density - epsilon + ranks / (rows.shape[1] - 1) * 2 * epsilon
    mask = torch.bernoulli(probs)
    return l1_rescaled(rows.float(), rows.float() * mask).to(tau.dtype).reshape(tau.shape)


def combine(base, taus, w, *, consensus, normalize, lam=1.0):
    weighted = [wi * t for wi, t in zip(w, taus)]
    if consensus:
        elected = torch.where(sum(weighted) >= 0, 1.0, -1.0).to(base.dtype)
        masks = [(torch.sign(t) == elected).to(base.dtype) for t in weighted]
    else:
        masks = [torch.ones_like(base) for _ in weighted]
    merged = sum(m * t for m, t in zip(masks, weighted))
    if normalize:
        divisor = sum(m * wi for m, wi in zip(masks, w))
        if consensus:
            divisor = torch.where(divisor == 0, torch.ones_like(divisor), divisor)
        merged = merged / divisor
    return base + lam * merged


def f_ties(base, xs, w, density, normalize=True, lam=1.0):
    taus = [topk_magnitude(x - base, d) for x, d in zip(xs, density)]
    return combine(base, taus, w, consensus=True, normalize=normalize, lam=lam)


def f_model_stock(base, xs):
    offs = [(x - base).reshape(-1) for x in xs]
    cos = [(a @ b) / (a.norm() * b.norm()) for i, a in enumerate(offs) for b in offs[i + 1 :]]
    c = sum(cos) / len(cos)
    n = len(xs)
    t = n * c / (1 + (n - 1) * c)
    return t * sum(xs) / n + (1 - t) * base


def f_karcher(xs, max_iter=10, tol=1e-5):
    norms = [x.norm() for x in xs]
    units = [(x / n).reshape(-1) for x, n in zip(xs, norms)]
    a = 1.0 / len(xs)
    mean = sum(units) * a
    mean = mean / mean.norm()
    for _ in range(max_iter):
        tangent = torch.zeros_like(mean)
        for u in units:
            theta = torch.arccos(torch.clamp(mean @ u, -1, 1))
            if theta > tol:
                tangent += a * theta / torch.sin(theta) * (u - torch.cos(theta) * mean)
        step = tangent.norm()
        if step < tol:
            break
        mean = torch.cos(step) * mean + torch.sin(step) * tangent / step
        mean = mean / mean.norm()
    return (a * sum(norms) * mean).reshape(xs[0].shape)


def f_sce(base, xs, topk):
    taus = torch.stack([x - base for x in xs])
    var = taus.var(dim=0, unbiased=False)
    k = int(int((var != 0).sum()) * topk)
    keep = torch.zeros(var.numel(), dtype=base.dtype)
    keep[var.abs().reshape(-1).argsort(descending=True)[:k]] = 1
    taus = taus * keep.reshape(var.shape)
    elected = torch.where(taus.sum(0) >= 0, 1.0, -1.0).to(base.dtype)
    masks = (torch.sign(taus) == elected).to(base.dtype)
    energy = taus.square().reshape(len(xs), -1).mean(1)
    w = (energy / energy.sum()).view(-1, 1, 1)
    return base + (taus * w * masks).sum(0) / (w * masks).sum(0).clamp(min=1e-6)


def f_consensus(base, xs, multi, lambdas, k, lam):
    taus = [x - base for x in xs]
    tall = [t.abs() > lm * (multi - t).abs() for t, lm in zip(taus, lambdas)]
    keep = sum(m.to(torch.int64) for m in tall) >= k
    return base + lam * keep * multi


def f_opcm(base, xs, alpha):
    """OPCM as published (full-matrix SVD, per-step rescaling), for one tensor = the whole model."""
    taus = [x - base for x in xs]
    merged, prev_lambda = taus[0].clone(), 1.0
    norms = [taus[0].norm()]
    for tau in taus[1:]:
        norms.append(tau.norm())
        u, s, vh = torch.linalg.svd(merged, full_matrices=True)
        split = int((s.cumsum(0) / s.sum() > alpha).float().argmax())
        p = u.T @ tau @ vh.T
        p.diagonal().fill_(0)
        p[:split, :split] = 0
        total = prev_lambda * merged + u @ p @ vh
        lam = total.norm() / (sum(norms) / len(norms))
        merged, prev_lambda = total / lam, lam
    return base + merged


def f_nearswap(base, x, t):
    """Take x where it is within t of base, interpolate towards base as they drift apart."""
    w = torch.clamp(t / torch.clamp((base - x).abs(), min=1e-6), 0, 1)
    return w * x + (1 - w) * base


def f_ram(base, xs, eps, r=None, alpha=None):
    """RAM: a delta shared by c > 1 models is averaged (/c), one held by a single model is kept
    whole (RAM+ scales those by 1 + r * min(shared/unique, alpha), per model; mergekit computes
    that factor in float32, the default dtype of a count divided by a float)."""
    taus = [x - base for x in xs]
    active = [t.abs() > eps for t in taus]
    count = sum(a.to(torch.int64) for a in active)
    merged = torch.zeros_like(base)
    for tau, act in zip(taus, active):
        boost = 1.0
        if r is not None:
            shared, unique = int((act & (count > 1)).sum()), int((act & (count == 1)).sum())
            rho = torch.tensor(shared, dtype=torch.float32) / max(unique, eps)
            boost = 1 + r * rho.clamp(0, alpha)
        merged += torch.where(count == 1, boost * tau, tau / count.clamp(min=1)) * act
    return base + merged


def f_arcee_fusion(base, x):
    """Keep x's deltas whose importance |x - base| * KL(softmax x || softmax base) (rows) is an
    outlier: at least median + 1.5 IQR (quantiles at floor(q (n - 1)) of the sorted scores)."""
    p, q = torch.softmax(x, -1) + 1e-8, torch.softmax(base, -1) + 1e-8
    importance = (x - base).abs() * (p * (p / q).log()).sum(-1, keepdim=True)
    ordered = importance.reshape(-1).sort().values
    q1, med, q3 = (ordered[int(f * (ordered.numel() - 1))] for f in (0.25, 0.5, 0.75))
    return base + (x - base) * (importance >= med + 1.5 * (q3 - q1))


# ---- cases: (tensors, base_index, params, expected) -----------------------------------------


def per(values, offset=0):
    return {i + offset: v for i, v in enumerate(values)}


def case(name):
    base, xs = inputs(3)
    w, d = [0.5, 0.3, 0.2], [0.6, 0.5, 0.7]
    with_base = [base, *xs]  # base at index 0
    if name == "linear":
        return xs, None, {"weight": per(w), "normalize": True}, f_linear(xs, w)
    if name == "multislerp":
        return (
            with_base,
            0,
            {"weight": per(w, 1), "normalize_weights": True, "eps": 1e-8},
            f_multislerp(xs, w, base),
        )
    if name == "slerp":
        return [base, xs[0]], 0, {"t": 0.3}, f_slerp(0.3, base, xs[0])
    if name == "nuslerp":
        return (
            xs[:2],
            None,
            {"weight": per([0.7, 0.3]), "nuslerp_row_wise": False, "nuslerp_flatten": True},
            f_nuslerp(xs[:2], [0.7, 0.3]),
        )
    if name == "karcher":
        return xs, None, {"max_iter": 10, "tol": 1e-5}, f_karcher(xs)
    gta = {"int8_mask": False, "lambda": 0.9, "weight": per(w, 1), "density": per(d, 1)}
    taus = [x - base for x in xs]
    if name == "task_arithmetic":
        return (
            with_base,
            0,
            gta | {"normalize": False, "rescale": False, "density": per([1.0] * 3, 1)},
            combine(base, taus, w, consensus=False, normalize=False, lam=0.9),
        )
    if name == "ties":
        return (
            with_base,
            0,
            gta | {"normalize": True, "rescale": False},
            f_ties(base, xs, w, d, True, 0.9),
        )
    if name in ("breadcrumbs", "breadcrumbs_ties"):
        gamma = [0.05, 0.1, 0.02]
        pruned = [outliers_pruned(t, di, g) for t, di, g in zip(taus, d, gamma)]
        return (
            with_base,
            0,
            gta | {"normalize": False, "rescale": False, "gamma": per(gamma, 1)},
            combine(base, pruned, w, consensus=name.endswith("ties"), normalize=False, lam=0.9),
        )
    if name in ("dare_ties", "dare_linear"):
        torch.manual_seed(tensor_seed(SEED, NAME))
        dropped = [bernoulli_dropped(t, di) for t, di in zip(taus, d)]
        return (
            with_base,
            0,
            gta | {"normalize": False, "rescale": True},
            combine(base, dropped, w, consensus=name == "dare_ties", normalize=False, lam=0.9),
        )
    if name in ("della", "della_linear"):
        eps = [0.1, 0.2, 0.15]
        torch.manual_seed(tensor_seed(SEED, NAME))
        dropped = [della_dropped(t, di, e) for t, di, e in zip(taus, d, eps)]
        ties = name == "della"
        return (
            with_base,
            0,
            gta | {"normalize": ties, "rescale": True, "epsilon": per(eps, 1)},
            combine(base, dropped, w, consensus=ties, normalize=ties, lam=0.9),
        )
    if name == "model_stock":
        return with_base, 0, {"filter_wise": False}, f_model_stock(base, xs)
    if name == "sce":
        return with_base, 0, {"int8_mask": False, "select_topk": 0.5}, f_sce(base, xs, 0.5)
    if name == "passthrough":
        return xs[:1], None, {"scale": {0: 0.5}}, 0.5 * xs[0]
    if name == "consensus_ta":
        multi = sum(wi * t for wi, t in zip(w, taus))
        lams = [0.3, 0.4, 0.5]
        return (
            with_base,
            0,
            {"weight": per(w, 1), "tall_lambda": per(lams, 1), "k": 2, "lambda": 0.8},
            f_consensus(base, xs, multi, lams, 2, 0.8),
        )
    if name == "consensus_ties":
        multi = f_ties(base, xs, w, d, normalize=False) - base
        lams = [0.3, 0.4, 0.5]
        return (
            with_base,
            0,
            {
                "weight": per(w, 1),
                "density": per(d, 1),
                "tall_lambda": per(lams, 1),
                "k": 2,
                "lambda": 0.8,
            },
            f_consensus(base, xs, multi, lams, 2, 0.8),
        )
    if name == "opcm":
        return with_base, 0, {"alpha": 0.5, "project_embeddings": False}, f_opcm(base, xs, 0.5)
    return _case_extra(name, base, xs)


def _case_extra(name, base, xs):
    if name == "nearswap":
        return [base, xs[0]], 0, {"t": 0.05}, f_nearswap(base, xs[0], 0.05)
    if name == "ram":  # epsilon 0.05 of deltas ~ N(0, 0.1): 0 to 3 models hold each weight
        return [base, *xs], 0, {"epsilon": 0.05}, f_ram(base, xs, 0.05)
    if name == "ramplus_tl":
        params = {"r": 0.5, "alpha": 0.6, "epsilon": 0.05}
        return [base, *xs], 0, params, f_ram(base, xs, 0.05, r=0.5, alpha=0.6)
    if name == "arcee_fusion":
        x = xs[0].clone()
        x[1, 3], x[4, 7] = x[1, 3] + 3.0, x[4, 7] - 2.0  # two outlying deltas
        return [base, x], 0, {}, f_arcee_fusion(base, x)
    return None


def run_kernel(name, tensors, base_index, params):
    method = get_method(name)
    merged = method.merge(tensors, base_index, params, name=NAME, seed=SEED)
    if method.delta_scale is not None:  # one tensor = the whole model
        scale = method.delta_scale.scale(method.delta_scale.stats(tensors, base_index, merged))
        merged = tensors[base_index] + scale * (merged - tensors[base_index])
    return merged


def test_every_method_has_a_formula():
    missing = [name for name in list_methods() if case(name) is None]
    assert not missing, f"add an independent formula to test_kernels.py for {missing}"


@pytest.mark.parametrize("name", list_methods())
def test_kernel_matches_formula(name):
    tensors, base_index, params, expected = case(name)
    merged = run_kernel(name, tensors, base_index, params)
    assert merged.shape == expected.shape and merged.dtype == expected.dtype
    tol = 1e-5 if name == "karcher" else 1e-9
    assert torch.allclose(merged, expected, atol=tol, rtol=0), (merged - expected).abs().max()
    assert not all(torch.equal(merged, t) for t in tensors)  # the case is not trivial


@pytest.mark.parametrize("name", ["dare_ties", "dare_linear", "della", "della_linear"])
def test_stochastic_kernels_are_seeded_per_tensor_and_leave_global_rng_alone(name):
    tensors, base_index, params, _ = case(name)
    method = get_method(name)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    a = method.merge(tensors, base_index, params, name=NAME, seed=SEED)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a, method.merge(tensors, base_index, params, name=NAME, seed=SEED))
    assert not torch.equal(a, method.merge(tensors, base_index, params, name=NAME, seed=SEED + 1))


def test_arcee_fusion_samples_large_tensors_under_the_tensor_seed():
    """Above 1e6 elements mergekit estimates the quantiles from a random sample: zoo seeds that
    draw per tensor, so the result is reproducible and equals mergekit under the same seed."""
    import mergekit.merge_methods as mkm

    base, (x,) = inputs(1, shape=(1001, 1000), seed=4)
    method = get_method("arcee_fusion")
    assert method.stochastic
    state = torch.random.get_rng_state()
    a = method.merge([base, x], 0, {}, name=NAME, seed=SEED)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a, method.merge([base, x], 0, {}, name=NAME, seed=SEED))
    assert not torch.equal(a, method.merge([base, x], 0, {}, name=NAME, seed=SEED + 1))
    torch.manual_seed(tensor_seed(SEED, NAME))
    assert torch.equal(a, mkm.merge_tensors([base, x], "arcee_fusion", base_index=0))


def test_opcm_reduced_svd_equals_full_projection_on_tall_and_wide():
    from zoo.merge.kernels.opcm import project_out

    for shape in ((9, 4), (4, 9)):
        base, xs = inputs(2, shape=shape, seed=3)
        merged, tau = xs[0] - base, xs[1] - base
        u, s, vh = torch.linalg.svd(merged, full_matrices=True)
        split = int((s.cumsum(0) / s.sum() > 0.5).float().argmax())
        p = u.T @ tau @ vh.T
        p.diagonal().fill_(0)
        p[:split, :split] = 0
        assert torch.allclose(project_out(merged, tau, 0.5), u @ p @ vh, atol=1e-12)


def test_opcm_leaves_embeddings_and_vectors_unprojected():
    for name, shape in (
        ("embeddings.word_embeddings.weight", (6, 10)),
        ("embed_tokens.weight", (6, 10)),
        ("encoder.layer.0.output.dense.bias", (10,)),
    ):
        base, xs = inputs(3, shape=shape, seed=5)
        taus = [x - base for x in xs]
        merged = get_method("opcm").merge(
            [base, *xs], 0, {"alpha": 0.5, "project_embeddings": False}, name=name
        )
        assert torch.allclose(merged, base + sum(taus), atol=1e-12)


def test_mergekit_multislerp_fails_on_all_zero_but_identity_rule_holds():
    """MiniLM's pooler.dense.bias is all zeros: mergekit's kernel raises for 3 inputs; the engine
    passes identical tensors through (tested end to end in test_engine), justified by this rule."""
    zeros = [torch.zeros(8) for _ in range(3)]
    params = {"weight": per([1.0, 1.0, 1.0]), "normalize_weights": True, "eps": 1e-8}
    with pytest.raises(ValueError, match="weighted sum"):
        get_method("multislerp").merge(zeros, None, params)
    assert get_method("multislerp").identity_on_equal(params, False)
    assert not get_method("linear").identity_on_equal(
        {"weight": per([1.0, 1.0]), "normalize": False}, False
    )
    assert get_method("linear").identity_on_equal(
        {"weight": per([0.25, 0.75]), "normalize": False}, False
    )
    assert not get_method("passthrough").identity_on_equal({"scale": {0: 2.0}}, False)


def test_half_precision_inputs_keep_their_dtype():
    for name in ("linear", "ties", "consensus_ta", "opcm", "multislerp", "karcher"):
        tensors, base_index, params, expected = case(name)
        half = [t.to(torch.bfloat16) for t in tensors]
        merged = get_method(name).merge(half, base_index, params, name=NAME)
        assert merged.dtype == torch.bfloat16 and torch.isfinite(merged).all(), name
        if name in ("linear", "multislerp"):  # smooth: bf16 rounding only
            assert torch.allclose(merged.double(), expected, atol=0.05), name
