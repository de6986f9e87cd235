"""``fastgd lecture``: LeCun's "The Convergence of Gradient Descent" on the built-in
data, slide by slide: one figure per slide and a table of the numbers."""

from __future__ import annotations

from pathlib import Path

from fastgd.cli.args import _pyplot, _save, _writable_target

LECTURE_W0 = (-1.0, 0.0)   # start of the weight-space slides (off both eigen-axes)
TOL = 1e-10  # the table's tolerance (fastgd's default is DEFAULT_TOL)


def _per_update_path(X, y, lr, epochs, w0, seed=0):
    """Per-sample SGD iterates in a fresh random order each epoch (the weight-space
    picture of SGD: fastgd.sgd records once per epoch)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    w = np.array(w0, dtype=float)
    path = [w.copy()]
    for _ in range(epochs):
        for p in rng.permutation(X.shape[0]):
            w = w - lr * (w @ X[p] - y[p]) * X[p]
            path.append(w.copy())
    return np.array(path)


def _shared_legend(fig, axs):
    """Under each panel its own entries (eigen-axes, the run); the entries every panel
    shares (contours, minimum, start) once, at the bottom of the figure."""
    shared = {}
    for ax in axs:
        own = []
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab.startswith(("contours", "minimum", "start")):  # the same in every panel
                shared.setdefault(lab, h)
            else:
                own.append((h, lab))
        ax.legend(*zip(*own, strict=True), loc="upper center", bbox_to_anchor=(0.5, -0.13),
                  ncol=1, frameon=False, fontsize="small")
    fig.legend(list(shared.values()), list(shared), loc="outside lower center",
               ncol=len(shared), frameon=False, fontsize="small")


class _Table:
    def __init__(self):
        self.rows = []

    def add(self, slide, what, value, lecture=""):
        self.rows.append((slide, what, value, lecture))

    def print(self):
        w = [max(len(str(r[i])) for r in self.rows + [("slide", "quantity", "fastgd",
                                                          "lecture")]) for i in range(4)]
        head = ("slide", "quantity", "fastgd", "lecture")
        print("  ".join(str(h).ljust(w[i]) for i, h in enumerate(head)))
        print("  ".join("-" * w[i] for i in range(4)))
        for r in self.rows:
            print("  ".join(str(v).ljust(w[i]) for i, v in enumerate(r)).rstrip())


class _Lecture:
    """The lecture's shared state: the data and its minimum, the table, where and how
    figures are written.  Each slide method adds its rows and (with plots) its figure."""

    def __init__(self, args):
        import numpy as np

        import fastgd as fg

        self.args = args
        self.plots = not args.no_plots
        self.fmt = args.format or "png"
        self.outdir = Path(args.out)
        self.plt = None
        if self.plots:
            _writable_target(self.outdir / f"figure.{self.fmt}")
            self.plt = _pyplot()
            self.outdir.mkdir(parents=True, exist_ok=True)
        self.seed = args.seed or 0
        self.written = []
        self.T = _Table()
        self.X, self.y = fg.lecture_data()
        self.s = fg.spectrum(self.X)
        self.wstar = np.linalg.lstsq(self.X, self.y, rcond=None)[0]
        self.estar = 0.5 * float(np.mean((self.y - self.X @ self.wstar) ** 2))
        self.w0 = np.array(LECTURE_W0)

    def save(self, fig, name):
        self.written.append(_save(fig, self.outdir / f"{name}.{self.fmt}", self.args.dpi))

    # 1. the data and the Hessian's spectrum ------------------------------------
    def spectrum(self):
        s, T = self.s, self.T
        T.add("1 spectrum", "λ_max, λ_min of H = XᵀX/P",
              f"{s.lambda_max:.4g}, {s.lambda_min:.4g}", "0.84, 0.036")
        T.add("1 spectrum", "condition number κ", f"{s.condition_number:.4g}", "")
        T.add("1 spectrum", "η_opt = 1/λ_max", f"{s.eta_opt:.4g}", "1.19")
        T.add("1 spectrum", "η_max = 2/λ_max", f"{s.eta_max:.4g}", "2.38")
        T.add("1 spectrum", "fastest η = 2/(λ_max+λ_min)", f"{s.eta_minimax:.4g}", "")
        if self.plots:
            from fastgd import plot as P

            fig, (a, b) = self.plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
            P.plot_data(self.X, self.y, ax=a,
                        title="the lecture's data: two classes at ±(0.4, 0.8)")
            P.plot_regimes(s, ax=b, marks=(1.5, 2.5), title="batch GD: error multiplier per "
                           "eigen-direction")
            self.save(fig, "01_data_spectrum")

    # 2-3. batch GD at 1.5 and 2.5 ----------------------------------------------
    def batch_gd(self):
        import fastgd as fg

        X, y, s, T = self.X, self.y, self.s, self.T
        g15 = fg.gd(X, y, 1.5, 1000, w0=self.w0, record=True, tol=TOL)
        g25 = fg.gd(X, y, 2.5, 1000, w0=self.w0, record=True, tol=TOL)
        b = fg.critical_lr(X, y)
        T.add("2 GD η=1.5", f"status, steps to tol {TOL:g}", f"{g15.status.name.lower()}, "
              f"{g15.steps_to_tol} steps", "converges")
        T.add("2 GD η=1.5", "multipliers 1 − ηλ", ", ".join(f"{m:+.3g}" for m in
                                                            s.multipliers(1.5)[::-1]), "")
        T.add("3 GD η=2.5", "status", f"{g25.status.name.lower()} (flagged at step "
              f"{g25.diverged_at})", "diverges")
        T.add("3 GD η=2.5", "multipliers 1 − ηλ", ", ".join(f"{m:+.3g}" for m in
                                                            s.multipliers(2.5)[::-1]), "")
        T.add("3 GD boundary", "critical η by simulation", f"{b.lr:.7g}", "2.38")
        if self.plots:
            for name, run, n in (("02_batch_gd_1.5", g15, 60), ("03_batch_gd_2.5", g25, 14)):
                self._gd_figure(name, run, n)

    def _gd_figure(self, name, run, n):
        from fastgd import plot as P

        fig, (a, c) = self.plt.subplots(1, 2, figsize=(11, 5.2), layout="constrained")
        lab = f"batch GD η = {run.lr:g}" + (" (diverges)" if run.diverged else "")
        ext = None
        if run.diverged:
            half, wstar = 2.2, self.wstar
            ext = (wstar[0] - half, wstar[0] + half, wstar[1] - half, wstar[1] + half)
        P.plot_weight_space(self.X, self.y, {lab: run}, ax=a, max_points=n, extent=ext,
                            title=f"weight space: {lab}")
        P.plot_losses({lab: run}, ax=c, minimum=self.estar, title="excess loss per step")
        c.set_xlabel("step (= epoch for batch GD)")
        self.save(fig, name)

    # 4. SGD at 0.2 ---------------------------------------------------------------
    def sgd(self):
        """Returns the SGD run at 0.2 (slide 5 draws it again)."""
        import numpy as np

        import fastgd as fg
        from fastgd import theory

        X, y, T, estar, w0 = self.X, self.y, self.T, self.estar, self.w0
        epochs = 30
        sg = fg.sgd(X, y, 0.2, epochs, order="shuffle", seed=self.seed, w0=w0, record=True,
                    tol=0.0)
        gd_ep = fg.gd(X, y, 1.5, epochs, w0=w0, record=True, tol=0.0)
        first = int(np.argmax(sg.losses - estar < 0.01 * (sg.losses[0] - estar)))
        T.add("4 SGD η=0.2", f"excess loss after {epochs} epochs",
              f"{sg.excess:.2e} (fluctuates; E* = {estar:.4g})", "fluctuates")
        T.add("4 SGD η=0.2", "epochs to 1% of initial excess",
              f"SGD {first}, batch GD η=1.5 "
              f"{int(np.argmax(gd_ep.losses - estar < 0.01 * (gd_ep.losses[0] - estar)))}",
              "SGD much faster")
        try:
            ms = theory.sgd_ms_critical_lr(X, 1, replacement=False)
            T.add("4 SGD η=0.2", "SGD mean-square limit (B = 1)", f"{ms:.4g}", "")
        except Exception:  # pragma: no cover - a limit that cannot be computed
            pass
        if self.plots:
            self._sgd_figure(sg, gd_ep)
        return sg

    def _sgd_figure(self, sg, gd_ep):
        from fastgd import plot as P

        X, y = self.X, self.y
        n_ep = 8  # long enough to reach the minimum and wander around it
        path = _per_update_path(X, y, 0.2, n_ep, self.w0, self.seed)
        gc, sc = P.COLORS["blue"], P.COLORS["vermillion"]
        fig, (a, c) = self.plt.subplots(1, 2, figsize=(11, 5.2), layout="constrained")
        P.plot_weight_space(X, y, {"batch GD η = 1.5": gd_ep,
                                   f"SGD η = 0.2, every update ({n_ep} epochs, shuffled)": path},
                            ax=a, max_points=n_ep * X.shape[0] + 1, colors=[gc, sc],
                            title="weight space: SGD fluctuates")
        P.plot_losses({"batch GD η = 1.5": gd_ep, "SGD η = 0.2 (per sample)": sg}, ax=c,
                      minimum=self.estar, colors=[gc, sc], title="excess loss per epoch")
        self.save(fig, "04_sgd_0.2")

    # 5. per-sample rate vs batch rate ------------------------------------------
    def sgd_vs_batch(self, sg):
        import fastgd as fg

        X, y, T, estar, w0 = self.X, self.y, self.T, self.estar, self.w0
        P_ = X.shape[0]
        g20 = fg.gd(X, y, 0.2 * P_, 200, w0=w0)
        small = 0.005
        sg_s = fg.sgd(X, y, small, 40, order="cyclic", w0=w0, record=True, tol=0.0)
        gd_s = fg.gd(X, y, small * P_, 40, w0=w0, record=True, tol=0.0)
        T.add("5 SGD ~ batch", "P·η for η = 0.2 per sample", f"{0.2 * P_:g} = "
              f"{0.2 * P_ / self.s.eta_max:.3g} η_max", "20")
        T.add("5 SGD ~ batch", "batch GD at η = 20", f"{g20.status.name.lower()} (step "
              f"{g20.diverged_at})", "")
        ex_s, ex_g = sg_s.losses[-1] - estar, gd_s.losses[-1] - estar
        T.add("5 SGD ~ batch", f"excess after 40 epochs: SGD η={small:g} | GD η={small * P_:g}",
              f"{ex_s:.3e} | {ex_g:.3e}", "")
        if self.plots:
            from fastgd import plot as P

            fig, ax = self.plt.subplots(figsize=(7.2, 5.0), layout="constrained")
            P.plot_losses({f"SGD η = {small:g} per sample": sg_s,
                           f"batch GD η = P·{small:g} = {small * P_:g}": gd_s,
                           "SGD η = 0.2 per sample": sg,
                           "batch GD η = P·0.2 = 20 (diverges)": fg.gd(X, y, 20.0, 8, w0=w0,
                                                                       tol=0.0)},
                          ax=ax, minimum=estar,
                          title="one SGD epoch ≈ one batch step with rate P·η (to first order)")
            ax.set_ylim(1e-6, 1e3)
            self.save(fig, "05_sgd_vs_batch_rate")

    # 6. normalizing the inputs ---------------------------------------------------
    def normalizing(self):
        import numpy as np

        import fastgd as fg
        from fastgd import plot as P

        X, y = self.X, self.y
        offset = np.array([1.0, 1.0])
        variants = [("inputs + (1, 1) (not centred)", "offset inputs", X + offset),
                    ("normalized (centred, unit variance)", "normalized",
                     fg.normalize(X + offset)),
                    ("whitened (PCA)", "whitened", fg.whiten(X + offset))]
        if self.plots:
            fig, axs = self.plt.subplots(1, 3, figsize=(15, 6.4), layout="constrained")
        for k, (name, short, Xv) in enumerate(variants):
            sv = fg.spectrum(Xv)
            lr = sv.eta_minimax
            r = fg.gd(Xv, y, lr, 100000, record=self.plots, tol=TOL)
            self.T.add("6 normalizing", f"{short}: κ, GD steps at 2/(λ_max+λ_min)",
                       f"κ = {sv.condition_number:.3g}, {r.steps_to_tol} steps", "")
            if self.plots:
                n = f"{r.steps_to_tol} step{'s' if r.steps_to_tol != 1 else ''}"
                P.plot_weight_space(Xv, y, {f"GD η = {lr:.3g}: {n} to tol "
                                            f"(κ = {sv.condition_number:.3g})": r},
                                    ax=axs[k], max_points=40, title=name, legend=False)
        if self.plots:
            _shared_legend(fig, axs)
            self.save(fig, "06_normalizing")

    # 7. the 1-1-1 network --------------------------------------------------------
    def one_one_one(self):
        import fastgd.chain as ch

        T = self.T
        c = 2.0  # the lecture's (1 - W1 W2)^2 is the unhalved loss
        m = ch.chain_minima(2, loss_scale=c)
        T.add("7 1-1-1", "loss (1 − w1·w2)² (c = 2): minima", "hyperbola w1·w2 = 1", "")
        T.add("7 1-1-1", "saddle at 0: Hessian eigenvalues", f"±{m.saddle_curvature:g}", "")
        T.add("7 1-1-1", "flattest minimum: sharpness, 2/sharpness",
              f"{m.min_sharpness:g}, {m.max_stable_lr:g}", "")
        runs = {}
        for w, lr in (((0.2, 0.3), 0.1), ((0.1, 2.0), 0.1), ((0.1, 2.0), 0.3),
                      ((0.1, 2.0), 0.45)):
            r = ch.chain_gd(w, lr, 2000, loss_scale=c, record=True)
            kind = {"converged": "converges", "diverged": "diverges",
                    "bounded": "bounded"}[r.status.name.lower()]
            if r.converged and r.max_loss_ratio > 1:
                kind = f"catapult: loss ×{r.max_loss_ratio:.2g}, then converges"
            label = f"w0 = {w}, η = {lr:g} (η·λ0 = {lr * r.lambda0:.2g}): {kind}"
            runs[label] = r
            T.add("7 1-1-1", f"GD from {w} at η = {lr:g}",
                  f"{r.status.name.lower()}; λ0 = {r.lambda0:.3g}, final sharpness "
                  f"{r.sharpness:.3g}" + (f", loss spike ×{r.max_loss_ratio:.2g}"
                                          if r.max_loss_ratio > 1 and r.converged else ""), "")
        if self.plots:
            self._chain_figures(runs, c)

    def _chain_figures(self, runs, c):
        import numpy as np

        import fastgd.chain as ch
        from fastgd import plot as P

        fig, ax = self.plt.subplots(figsize=(7.6, 7.4), layout="constrained")
        P.plot_chain_landscape(runs, ax=ax, loss_scale=c, lim=2.5, max_points=60,
                               title="1-1-1 network: E = (1 − w1·w2)², GD trajectories")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=1, frameon=False,
                  fontsize="small")
        self.save(fig, "07_one_one_one")
        t = np.linspace(0.0, 2.0, 81)
        inits = np.stack([np.sqrt(0.2) * np.exp(t), np.sqrt(0.2) * np.exp(-t)], axis=1)
        res = ch.chain_sweep(inits, np.geomspace(0.01, 1.0, 121), 2000, loss_scale=c,
                             threads=self.args.threads, progress=self.args.progress)
        fig, ax = self.plt.subplots(figsize=(7.6, 5.8), layout="constrained")
        P.plot_chain_phase(res, ax=ax, title="1-1-1 network, GD from w1·w2 = 0.2: "
                           "outcome after 2000 steps")
        self.save(fig, "08_one_one_one_phase")


def cmd_lecture(args):
    """``fastgd lecture``: the slides' figures in ``args.out`` and the table on stdout."""
    lec = _Lecture(args)
    lec.spectrum()
    lec.batch_gd()
    sg = lec.sgd()
    lec.sgd_vs_batch(sg)
    lec.normalizing()
    lec.one_one_one()
    print(f"fastgd lecture: LeCun's 'Convergence of Gradient Descent' on the built-in data "
          f"(E = 1/(2P) Σ (y − w·x)², w0 = {tuple(LECTURE_W0)})")
    lec.T.print()
    for p in lec.written:
        print(f"fastgd: wrote {p}")
    return 0
