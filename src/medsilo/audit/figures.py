"""PNG figures of a privacy audit: originals vs reconstructions, and membership ROC curves.

ROC curves are drawn on log-log axes (Carlini et al. 2022): the low-FPR region, where an
attack is confidently right about some members, is what matters, and a linear plot hides it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from medsilo.audit.inversion_audit import InversionAudit
from medsilo.audit.membership import AttackScores
from medsilo.audit.roc import roc_points


def _display(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scaled = np.clip((image - lo) / (hi - lo), 0.0, 1.0)
    return scaled[0] if scaled.shape[0] == 1 else np.transpose(scaled, (1, 2, 0))


def inversion_figure(audit: InversionAudit, bounds: tuple[float, float], path: Path) -> bool:
    """Top row the site's images, bottom row the attacker's reconstructions; False if the
    inputs are not images (nothing drawn)."""
    if not audit.truths or audit.truths[0].ndim != 3:
        return False
    n = len(audit.truths)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n + 0.6, 3.6), squeeze=False)
    lo, hi = bounds
    for i, (truth, recon, score) in enumerate(
        zip(audit.truths, audit.reconstructions, audit.scores, strict=True)
    ):
        for row, image in ((0, truth), (1, recon)):
            ax = axes[row][i]
            ax.imshow(_display(image, lo, hi), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        ssim_text = f"\nSSIM {score.ssim:.2f}" if score.ssim is not None else ""
        axes[1][i].set_xlabel(f"{score.psnr:.1f} dB{ssim_text}", fontsize=7)
    axes[0][0].set_ylabel("original")
    axes[1][0].set_ylabel("reconstruction")
    s = audit.settings
    fig.suptitle(
        f"gradient inversion, site {audit.site}: batch {s.batch_size}, "
        f"{s.local_steps} local step(s)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def roc_figure(attacks: dict[str, AttackScores], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    floor = 1e-4
    for name, scores in attacks.items():
        fpr, tpr = roc_points(scores.members, scores.non_members)
        ax.plot(
            np.maximum(fpr, floor),
            np.maximum(tpr, floor),
            label=f"{name} (AUC {scores.roc.auc:.3f}, TPR@0.1% {scores.roc.tpr_at_low_fpr:.3f})",
        )
    ax.plot([floor, 1], [floor, 1], "k--", lw=0.8, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1)
    ax.set_ylim(floor, 1)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title("membership inference on the final global model", fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
