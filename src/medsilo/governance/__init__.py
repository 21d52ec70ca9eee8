"""Data governance: per-round checkpoints, cohort consent windows and exact unlearning.

See docs/governance.md. ``config`` holds the ``governance:`` config section, ``participation``
decides which sites may train (withdrawn or expired cohorts are absent), ``checkpoint`` writes
and loads per-round engine state, ``unlearn`` retrains a run with a site or cohort withdrawn;
``patient_register``, ``patient_consent`` and ``patient_unlearn`` do the same per patient (a
site's consent register, the per-round filter, unlearning a patient who revoked).
"""
