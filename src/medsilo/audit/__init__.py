"""Empirical privacy audits of a finished run (``medsilo audit privacy RUN``).

Two attacks measure what the leakage-risk proxy only estimates (docs/privacy-audits.md):

* :mod:`medsilo.audit.inversion`: an honest-but-curious coordinator reconstructs a site's
  training images from the update the site transmits (Geiping et al. 2020), scored by
  :mod:`medsilo.audit.image_metrics` (PSNR, SSIM);
* :mod:`medsilo.audit.membership` and :mod:`medsilo.audit.lira`: membership inference on the
  final global model (loss threshold, Yeom et al. 2018; offline LiRA, Carlini et al. 2022),
  scored by :mod:`medsilo.audit.roc` (AUC, TPR at 0.1% FPR).
"""
