"""Fit the coefficients of the kernels' tanh (``fastgd/kernels/fmath.py``).

    python scripts/tanh_minimax.py        (needs mpmath; a few seconds)

tanh(x) / x ~ P(z) / Q(z) with z = x^2 on 0 <= x <= XMAX, P and Q of degree 9 with
P(0) = Q(0) = 1 (so tanh(x) = x for tiny x), minimax in relative error: the Remez
exchange for rational functions (linearised: the levelled-error equations
P(z_i) - g_i Q(z_i) = (-1)^i E g_i Q_prev(z_i) at 19 points, solved again until Q
settles, then the points moved to the extrema of the error on a dense grid), in 60-digit
arithmetic.  Prints the levelled error and the coefficients, rounded to doubles, as
``fmath`` holds them (``_TP``, ``_TQ``).
"""

from __future__ import annotations

import mpmath as mp

mp.mp.dps = 60
XMAX = mp.mpf("19.1")  # above 19.06 tanh(x) rounds to 1
DEG = 9                # of P and of Q (in z)
NPTS = 2 * DEG + 1     # 18 free coefficients and the levelled error


def g(z):
    """tanh(x) / x at z = x^2."""
    if z == 0:
        return mp.mpf(1)
    s = mp.sqrt(z)
    return mp.tanh(s) / s


def horner(c, z):
    r = mp.mpf(0)
    for a in reversed(c):
        r = r * z + a
    return r


def solve(pts, q_prev):
    """P, Q (P(0) = Q(0) = 1) and E levelling the error at ``pts``, with E's factor
    Q taken from the previous solution."""
    n = 2 * DEG
    A, b = mp.matrix(NPTS, NPTS), mp.matrix(NPTS, 1)
    for i, z in enumerate(pts):
        gi = g(z)
        for j in range(1, DEG + 1):
            A[i, j - 1] = z ** j
            A[i, DEG + j - 1] = -gi * z ** j
        A[i, n] = -((-1) ** i) * gi * horner(q_prev, z)
        b[i] = gi - 1
    x = mp.lu_solve(A, b)
    return ([mp.mpf(1)] + [x[j] for j in range(DEG)],
            [mp.mpf(1)] + [x[DEG + j] for j in range(DEG)], x[n])


def alternating_extrema(zs, errs):
    """The local extrema of the error, neighbours of one sign merged into the larger,
    trimmed to NPTS from the end with the smaller error."""
    ext = []
    for k, e in enumerate(errs):
        if (k == 0 or abs(e) >= abs(errs[k - 1])) and \
                (k + 1 == len(errs) or abs(e) >= abs(errs[k + 1])):
            if ext and (ext[-1][1] > 0) == (e > 0):
                if abs(e) > abs(ext[-1][1]):
                    ext[-1] = (zs[k], e)
            else:
                ext.append((zs[k], e))
    while len(ext) > NPTS:
        ext.pop(0 if abs(ext[0][1]) < abs(ext[-1][1]) else -1)
    return ext


def fit(grid=3000, iters=40):
    zz = XMAX * XMAX
    zs = [(XMAX * k / grid) ** 2 for k in range(1, grid + 1)]
    pts = [zz * (1 - mp.cos(mp.pi * (i + mp.mpf(1) / 2) / NPTS)) / 2 for i in range(NPTS)]
    pts[-1] = zz
    P, Q = None, [mp.mpf(1)] + [mp.mpf(0)] * DEG
    for _ in range(iters):
        for _ in range(6):
            P, Q, E = solve(pts, Q)
        errs = [horner(P, z) / (horner(Q, z) * g(z)) - 1 for z in zs]
        ext = alternating_extrema(zs, errs)
        worst = max(abs(e) for e in errs)
        if len(ext) < NPTS:
            raise RuntimeError("the error lost its alternation")
        pts = [z for z, _ in ext]
        if worst <= abs(E) * (1 + mp.mpf("1e-3")):
            return P, Q, worst
    raise RuntimeError("no convergence")


def main():
    P, Q, worst = fit()
    print(f"levelled relative error {mp.nstr(worst, 4)} on 0 <= x <= {XMAX}")
    for name, c in (("_TP", P), ("_TQ", Q)):
        print(f"{name} = ({', '.join(repr(float(v)) for v in c)})")


if __name__ == "__main__":
    main()
