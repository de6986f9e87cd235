"""The shortcuts that cut a sweep's fixed costs give what the general paths give.

* datasets of plain float64 arrays are checked on the stack at once
  (``linear.datasets._plain_pairs``); anything else goes through the checks per dataset,
  which explain a refusal;
* a block whose chunks are one run of cells is read and written as one slice
  (``linear.executors.gather`` / ``scatter``);
* the checks of a sweep's blocks share one ``linear.checks.Checks``;
* a short sweep runs as one batch.
"""

import numpy as np
import pytest

import fastgd as fg
from fastgd.engine import grid as G
from fastgd.linear import checks as CK
from fastgd.linear import datasets as DS
from fastgd.linear import executors as E
from fastgd.linear import problem as PB


def _pairs(rng, n=3, P=20, d=3):
    return [(rng.standard_normal((P, d)), rng.standard_normal(P)) for _ in range(n)]


def test_plain_pairs_pass_through_unchanged(rng):
    data = _pairs(rng)
    fast = DS._plain_pairs(data)
    assert fast is not None
    slow = [DS._pair("sweep", k, item) for k, item in enumerate(data)]
    for (X, y), (Xs, ys), (X0, y0) in zip(fast, slow, data, strict=True):
        assert X is X0 and y is y0 and Xs is X0 and ys is y0


@pytest.mark.parametrize("spoil", [
    "nan", "inf", "huge_x", "huge_y", "float32", "int", "fortran", "readonly", "shape",
    "y2d", "subclass", "empty", "not_pair"])
def test_anything_unusual_takes_the_checks_per_dataset(rng, spoil):
    data = _pairs(rng)
    X, y = data[1]
    if spoil == "nan":
        X[2, 1] = np.nan
    elif spoil == "inf":
        y[3] = np.inf
    elif spoil == "huge_x":
        X[0, 0] = 1e160
    elif spoil == "huge_y":
        y[0] = 1e160
    elif spoil == "float32":
        X = X.astype(np.float32)
    elif spoil == "int":
        y = np.arange(y.size)
    elif spoil == "fortran":
        X = np.asfortranarray(X)
    elif spoil == "readonly":
        X.flags.writeable = False
    elif spoil == "shape":
        X, y = X[:-1], y[:-1]
    elif spoil == "y2d":
        y = y[:, None]
    elif spoil == "subclass":
        X = np.asarray(X).view(np.matrix)
    elif spoil == "empty":
        X, y = X[:0], y[:0]
    data[1] = (X, y) if spoil != "not_pair" else (X, y, y)
    assert DS._plain_pairs(data) is None


def test_refusals_are_the_per_dataset_messages(rng):
    data = _pairs(rng)
    data[2][0][1, 1] = np.nan
    with pytest.raises(ValueError, match=r"'data\[2\]\[0\]' must be finite"):
        fg.sweep("gd", data=data, lr=[0.1], steps=3)
    data = _pairs(rng)
    data[1][1][0] = 1e200
    with pytest.raises(ValueError, match=r"'data\[1\]\[1\]' must be small enough"):
        fg.sweep("gd", data=data, lr=[0.1], steps=3)


def _outputs(rng, shape, d):
    out = G.Outputs(*shape, d, n_rec=2)
    for f in E.FIELDS:
        a = getattr(out, f)
        a[...] = rng.integers(-5, 5, a.shape) if a.dtype.kind in "iu" else \
            rng.standard_normal(a.shape)
    return out


@pytest.mark.parametrize("rows", [
    [[0, 0, 0, 4], [0, 0, 4, 8], [1, 0, 0, 4], [1, 0, 4, 8]],  # one run: the slice
    [[1, 0, 0, 4], [0, 0, 4, 8]],                                # out of order
    [[0, 0, 0, 4], [1, 0, 4, 8]],                                # a gap
    [[0, 1, 4, 8], [1, 0, 0, 4]],                                # run across a seed
])
def test_gather_and_scatter_agree_with_the_rows(rng, rows):
    rows = np.array(rows, dtype=np.int64)
    out = _outputs(rng, (2, 2, 8), 3)
    res = E.gather(out, rows)
    pos = 0
    for di, si, a, b in rows:
        for f in E.FIELDS:
            np.testing.assert_array_equal(res[f][pos:pos + b - a], getattr(out, f)[di, si, a:b])
        pos += b - a
    back = _outputs(rng, (2, 2, 8), 3)
    before = {f: getattr(back, f).copy() for f in E.FIELDS}
    E.scatter(back, res)
    written = np.zeros((2, 2, 8), dtype=bool)
    for di, si, a, b in rows:
        written[di, si, a:b] = True
    for f in E.FIELDS:
        got, old, src = getattr(back, f), before[f], getattr(out, f)
        np.testing.assert_array_equal(got[written], src[written])
        np.testing.assert_array_equal(got[~written], old[~written])


def test_span_only_for_one_run():
    shape = (2, 2, 8)
    assert E._span(np.array([[0, 1, 0, 8], [1, 0, 0, 8]]), shape) == (8, 24)
    assert E._span(np.array([[0, 1, 0, 8], [1, 1, 0, 8]]), shape) is None
    assert E._span(np.zeros((0, 4), dtype=np.int64), shape) is None


@pytest.mark.parametrize("method", ["gd", "sgd"])
def test_one_batch_or_many_same_bits(monkeypatch, method):
    kw = dict(lr=np.geomspace(0.02, 3.0, 24), condition=[1.0, 30.0, 1e3], lanes=4,
              threads=min(2, G.max_threads()), tol=1e-6, curve_points=5, weights=True)
    kw.update(steps=60) if method == "gd" else kw.update(epochs=6, seeds=2)
    calls = []
    real = E.run_block

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(E, "run_block", counted)
    one = fg.sweep(method, **kw)
    assert len(calls) == 1  # short: one batch
    monkeypatch.setattr(E, "ONE_BATCH_S", 0.0)
    many = fg.sweep(method, **kw)
    assert len(calls) > 2
    for f in ("status", "final_loss", "steps_to_tol", "diverged_at", "curves", "weights",
              "growing"):
        np.testing.assert_array_equal(getattr(one, f), getattr(many, f), err_msg=f)


def test_checks_shared_equal_checks_per_block(rng):
    data = _pairs(rng, n=4, P=15, d=2)
    probs = PB.prepare_many("t", data)
    w0 = np.array([0.3, -0.2])
    shared = CK.Checks(probs, w0)
    for k in range(4):
        alone = CK.Checks(probs, w0, np.array([k]))
        assert shared.ex0[k] == alone.ex0[k] and shared.loss0[k] == alone.loss0[k]
        assert np.isinf(np.delete(alone.ex0, k)).all()
    W = rng.standard_normal((9, 2))
    data_idx = np.array([3, 0, 0, 2, 1, 3, 3, 0, 2])
    a = CK.cell_losses(probs, W, data_idx, 1, shared.stack)
    b = CK.cell_losses(probs, W, data_idx, 1)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("d", [1, 2, 7, 30, 100])
def test_final_check_cells_equal_single_cells_and_numpy(rng, d):
    """A cell of the final check gives the same bits in a segment of many cells and
    alone, and E(w), E(w) - E* agree with NumPy to 1e-12 (the excess against
    |X (w - w*)|^2 / (2P), not a difference of losses)."""
    data = _pairs(rng, n=2, P=40, d=d)
    probs = PB.prepare_many("t", data)
    n = 37
    W = rng.standard_normal((2 * n, d)) * np.logspace(0, -3, d)
    idx = np.repeat([0, 1], n)
    loss, excess = CK.cell_losses(probs, W, idx, 2)
    for c in range(0, 2 * n, 3):
        one = CK.cell_losses(probs, W[c:c + 1], idx[c:c + 1], 1)
        assert one[0][0] == loss[c] and one[1][0] == excess[c]
    for c in range(2 * n):
        p = probs[idx[c]]
        r, u = p.y - p.X @ W[c], p.X @ (W[c] - p.wstar)
        np.testing.assert_allclose(loss[c], 0.5 * (r @ r) / p.P, rtol=1e-12)
        np.testing.assert_allclose(excess[c], 0.5 * (u @ u) / p.P, rtol=1e-12)


@pytest.mark.parametrize("d", [1, 2, 10, 13, 30, 100])
@pytest.mark.parametrize("sizes", [[256] * 4, [300, 17], [1], [5, 0, 700]])
def test_check_segments_cover_the_cells_in_even_shares(d, sizes):
    """The final check's segments: each dataset's cells in order, cut into the fewest
    segments of at most the cap, all of one size (a multiple of 16) but the last, so
    that workers taking every n-th segment get even shares (d = 10, 256 cells: 128 + 128,
    not 192 + 64)."""
    data = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    used, order, segs = CK._segments(data, d)
    cap = min(CK.SEGMENT_MAX, max(32, CK.SEGMENT_DOUBLES // d))
    cap -= cap % 16
    assert used.tolist() == [k for k, n in enumerate(sizes) if n]
    np.testing.assert_array_equal(order, np.arange(data.size))
    assert segs[0, 1] == 0 and np.all(segs[1:, 1] == segs[:-1, 2]) and segs[-1, 2] == data.size
    for k in range(used.size):
        n = segs[segs[:, 0] == k, 2] - segs[segs[:, 0] == k, 1]
        assert n.size == -(-sizes[used[k]] // cap) and np.all(n <= cap)
        assert np.all(n[:-1] == n[0]) and np.all(n[:-1] % 16 == 0) and n[-1] <= n[0]
    if d == 10 and sizes[0] == 256:
        assert (segs[:, 2] - segs[:, 1]).tolist() == [128] * 8


def test_cache_keys_on_threads_equal_one_by_one(rng, monkeypatch):
    """Large data hashes its cache keys on the sweep's threads: the same keys, each in
    its dataset's place (both workers used)."""
    data = _pairs(rng, n=7, P=30, d=4) + [(rng.standard_normal((9, 4)), rng.standard_normal(9))]
    one = [PB._cache_key(X, y, True) for X, y in data]
    assert PB._cache_keys(data, True, 2) == one  # small: on one thread
    seen = []
    part = PB._keys_part
    monkeypatch.setattr(PB, "_keys_part", lambda *a: seen.append(a[-2]) or part(*a))
    monkeypatch.setattr(PB, "KEYS_THREADED_BYTES", 0)
    assert PB._cache_keys(data, True, 2) == one and sorted(seen) == [0, 1]
    assert PB._cache_keys(data, False, 2) != one  # bias is part of the key


def test_public_cache_info_and_clear(rng):
    """fg.cache_info counts what sweeps and runs prepared (problems and the bytes of
    their arrays); fg.clear_cache frees them and says what it held; results after it are
    the same bits (prepared afresh)."""
    fg.clear_cache()
    assert fg.cache_info()[:2] == (0, 0)
    data = _pairs(rng, n=4, P=30, d=6)
    kw = dict(data=data, lr=[0.01, 0.05], epochs=3, order="shuffle", progress=False)
    first = fg.sweep("sgd", **kw)
    info = fg.cache_info()
    assert info.problems == 4 and info.max_problems == PB.CACHE_SIZE
    assert info.bytes == sum(PB._nbytes(p) for p in PB._CACHE.values())
    assert info.bytes >= sum(X.nbytes + y.nbytes for X, y in data)
    fg.gd(rng.standard_normal((12, 2)), rng.standard_normal(12), lr=0.1, steps=3)
    assert fg.cache_info().problems == 5
    freed = fg.clear_cache()
    assert isinstance(freed, fg.CacheInfo) and freed.problems == 5
    assert freed.bytes > info.bytes and fg.cache_info()[:2] == (0, 0)
    again = fg.sweep("sgd", **kw)
    assert np.array_equal(first.final_loss, again.final_loss)
    assert fg.cache_info().problems == 4


def test_sweeps_reuse_prepared_statistics(rng, monkeypatch):
    """A sweep on datasets prepared before (by a sweep or a single run) takes their
    statistics from the cache: the same Problem objects, no LAPACK call for them; a
    dataset changed in place, or new, is computed, bit for bit as on a cold cache; the
    cache stays within its size and byte limits."""
    calls = []
    stack = PB._stack_statistics

    def spy(Xs, ys, nworkers=1):
        calls.append(Xs.shape[0])
        return stack(Xs, ys, nworkers)

    monkeypatch.setattr(PB, "_stack_statistics", spy)
    PB.clear_cache()
    data = _pairs(rng, n=4, P=25, d=5)
    first = PB.prepare_many("t", data)
    again = PB.prepare_many("t", [(X.copy(), y.copy()) for X, y in data])  # same content
    assert calls == [4] and all(a is b for a, b in zip(first, again, strict=True))
    single = PB.prepare("t", *data[2])
    assert single is first[2] and calls == [4]
    X1 = data[1][0]
    X1[3, 2] += 1.0  # changed in place: a new key
    extra = (rng.standard_normal((25, 5)), rng.standard_normal(25))
    mixed = PB.prepare_many("t", data + [extra])
    assert calls == [4, 2]  # the changed dataset and the new one, in one stacked call
    assert mixed[0] is first[0] and mixed[1] is not first[1]
    PB.clear_cache()
    cold = PB.prepare_many("t", data + [extra])
    for a, b in zip(mixed, cold, strict=True):
        assert np.array_equal(a.wstar, b.wstar) and np.array_equal(a.R, b.R)
        assert np.array_equal(a.X, b.X) and a.estar == b.estar and a.c0 == b.c0
    assert np.array_equal(mixed[1].wstar, np.linalg.lstsq(X1, data[1][1], rcond=None)[0])
    assert not np.shares_memory(mixed[1].X, X1)  # the cache keeps its own copies
    monkeypatch.setattr(PB, "CACHE_BYTES", 3 * PB._nbytes(cold[0]))
    PB.prepare_many("t", _pairs(rng, n=6, P=25, d=5))
    assert len(PB._CACHE) == 3 and PB._CACHE_HELD[0] <= PB.CACHE_BYTES
    monkeypatch.setattr(PB, "CACHE_SIZE", 2)
    PB.prepare_many("t", _pairs(rng, n=5, P=25, d=5))
    assert len(PB._CACHE) == 2
    PB.clear_cache()
    assert len(PB._CACHE) == 0 and PB._CACHE_HELD[0] == 0


def test_sgd_limits_kept_with_the_prepared_problem(rng, monkeypatch):
    """A random-order SGD sweep's mean-square limits (a Lanczos or dense eigenproblem per
    dataset) are kept with the cached problems: a repeated sweep computes none and
    reports the same; other arguments (momentum, batch size) compute theirs, equal to
    fg.theory.limits on each dataset."""
    import fastgd.theory as T

    data = []
    for _ in range(2):
        X = rng.normal(size=(30, 12)) * np.geomspace(1.0, 3.0, 12)
        data.append((X, X @ rng.normal(size=12)))
    kw = dict(data=data, lr=np.geomspace(0.01, 1.0, 8), lr_unit="eta_max", epochs=0,
              order="shuffle", progress=False)
    fg.clear_cache()
    first = fg.sweep("sgd", **kw)
    calls = []
    orig = T.limits
    monkeypatch.setattr(T, "limits", lambda *a, **k: calls.append(k) or orig(*a, **k))
    again = fg.sweep("sgd", **kw)
    assert calls == []
    assert np.array_equal(again.sgd_ms_limit, first.sgd_ms_limit)
    assert np.all(np.isfinite(first.sgd_ms_limit))
    for extra in (dict(momentum=0.5), dict(batch_size=5)):
        res = fg.sweep("sgd", **kw, **extra)
        want = [orig(X, batch_size=extra.get("batch_size", 1), order="shuffle",
                     momentum=extra.get("momentum", 0.0))["sgd_ms"] for X, _ in data]
        assert np.array_equal(res.sgd_ms_limit, want), extra
    assert len(calls) == 4
