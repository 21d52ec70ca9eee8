"""One site's own data, for a deployed site process (``medsilo site start SITE --data PATH``).

In a real deployment each hospital's process must read only its own data, yet train on
exactly the arrays the in-process engine (:func:`medsilo.data.registry.build_federation`)
gives that site for the same config and seed. :func:`load_own_site` returns a
:class:`FederatedData` holding just that site (pooled test = the site's test set, same
``num_classes``/``task``/``input_shape`` as the engine's federation).

The arrays are never standardised here, even with ``standardize: federated``: the deployed
runtime exchanges :class:`medsilo.data.standardize.Moments` of each site's training rows,
``combine``s them at the coordinator, and every site applies the result with
``apply_standardization`` — which reproduces the engine's standardised arrays exactly.

Per dataset:

* ``heart_disease`` (natural): the hospital's own file only, encoded with the documented code
  sets (``heart_disease.CATEGORIES``, equal to the pooled categories the engine used to
  derive) and split with FLamby's per-centre split. ``max_train_samples``/``max_test_samples``
  are refused: the engine draws the cap once over the concatenation of all hospitals, which
  a site holding only its own file cannot reproduce.
* partitioned bundled datasets (mnist, fashion_mnist, cifar10_subset, breastmnist,
  pneumoniamnist, breast_cancer): **for demos and benchmarks only, not for real hospitals** —
  every site process holds the whole public dataset, builds the same partition and keeps its
  own part (``site-00``, ``site-01``, ...). The synthetic segmentation hospitals
  (``synthetic_segmentation``, ``_3d``) likewise: every site makes all three from the seed
  and keeps its own.
* site-held ``tabular``/``dicom``: only that site's entry is read and validated (another
  site's bad data does not stop this one); ``path`` overrides the entry's CSV (tabular) or
  folder (dicom). The site keeps its index in the config, which seeds its train/test split.
* site-held ``omop``: only that site's database is checked and queried (docs/omop.md); the
  connection is the site's entry in the config (``path`` does not apply).
* site-held ``fhir``: only that site's bundles are read and validated (docs/fhir.md); ``path``
  overrides the entry's bundles (a folder or file).
* site-held ``images``: only that site's folder is checked and read, item by item as in the
  engine (never cached as arrays); ``path`` overrides the entry's folder (a labels CSV or
  mask folder left at its default, inside the folder, moves with it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from medsilo.data import heart_disease
from medsilo.data.base import DataFormatError, FederatedData, SiteData
from medsilo.data.image_config import ImageSiteEntry
from medsilo.data.paths import data_root
from medsilo.data.sources import DicomSiteEntry
from medsilo.data.spec import DataConfig
from medsilo.data.synthetic_segmentation import SEGMENTATION_DATASETS

__all__ = ["load_own_site"]


def load_own_site(cfg: DataConfig, site: str, path: Path | None, seed: int) -> FederatedData:
    """Site ``site``'s train/test exactly as ``build_federation(cfg, seed)`` would give them
    before standardisation, read from ``path`` (None: the default location, see below).

    ``path``: heart_disease — the hospital's file or a folder holding ``processed.<site>.data``
    (None: ``data_root()/heart_disease``); partitioned datasets — a data root like
    ``$MEDSILO_DATA_DIR`` (None: the default root); tabular — the site's CSV; dicom — the
    site's DICOM folder; images — the site's image folder (None for these three: the path in
    the config); fhir — the site's bundles (None: the config's).
    """
    if cfg.dataset == "tabular":
        return _tabular_site(cfg, site, path)
    if cfg.dataset == "dicom":
        return _dicom_site(cfg, site, path)
    if cfg.dataset == "images":
        return _images_site(cfg, site, path)
    if cfg.dataset == "omop":
        return _omop_site(cfg, site, path)
    if cfg.dataset == "fhir":
        return _fhir_site(cfg, site, path)
    if cfg.partition == "natural" and cfg.dataset not in SEGMENTATION_DATASETS:
        return _heart_site(cfg, site, path)
    return _partitioned_site(cfg, site, path, seed)


def _heart_site(cfg: DataConfig, site: str, path: Path | None) -> FederatedData:
    allowed = tuple(cfg.hospitals) if cfg.hospitals is not None else heart_disease.HOSPITALS
    if site not in allowed:
        where = "data.hospitals" if cfg.hospitals is not None else "heart_disease"
        raise ValueError(
            f"site {site!r} is not a hospital of this federation; {where}: {', '.join(allowed)}"
        )
    if cfg.max_train_samples is not None or cfg.max_test_samples is not None:
        raise ValueError(
            "max_train_samples/max_test_samples are not supported for a deployed heart_disease "
            "site: the engine draws the cap once over all hospitals' pooled rows, which a site "
            "holding only its own file cannot reproduce; remove them from data:"
        )
    data = heart_disease.load_hospital(_hospital_file(site, path), site)
    return FederatedData("heart_disease", [data], data.test, num_classes=2, task="binary")


def _hospital_file(site: str, path: Path | None) -> Path:
    filename = f"processed.{site}.data"
    if path is None:
        return data_root() / "heart_disease" / filename
    path = Path(path).expanduser()
    if path.is_dir():
        return path / filename
    if path.is_file():
        return path
    raise DataFormatError(
        f"--data {path}: no such file or folder; give hospital {site!r}'s file or a folder "
        f"holding {filename}"
    )


def _partitioned_site(cfg: DataConfig, site: str, root: Path | None, seed: int) -> FederatedData:
    from medsilo.data.registry import build_federation  # registry imports every loader

    fed = build_federation(cfg.model_copy(update={"standardize": "none"}), seed, root)
    if site not in fed.site_names:
        raise ValueError(
            f"site {site!r} is not a site of this {cfg.dataset} federation; sites are "
            f"{', '.join(fed.site_names)}"
        )
    own = fed.site(site)
    return FederatedData(fed.name, [own], own.test, fed.num_classes, fed.task)


def _site_index(names: list[str], site: str, section: str) -> int:
    if site not in names:
        raise ValueError(
            f"site {site!r} is not listed in data.{section}.sites; sites are {', '.join(names)}"
        )
    return names.index(site)


FolderEntry = TypeVar("FolderEntry", DicomSiteEntry, ImageSiteEntry)


def _own_entry(
    entries: list[FolderEntry], site: str, section: str, folder: Path | None
) -> tuple[int, FolderEntry]:
    """Site ``site``'s index and entry, read from ``folder`` when given (``--data``): a
    labels file or mask folder left at its default, inside the folder, moves with it."""
    index = _site_index([e.name for e in entries], site, section)
    entry = entries[index]
    return index, entry if folder is None else entry.model_copy(update={"folder": Path(folder)})


def _tabular_site(cfg: DataConfig, site: str, csv: Path | None) -> FederatedData:
    from medsilo.data.schema import load_schema
    from medsilo.data.site_mapping import load_mapping
    from medsilo.data.site_validation import check_site
    from medsilo.data.tabular_sites import SiteDataError, refusal_message, site_arrays

    src = cfg.tabular
    assert src is not None  # guaranteed by DataConfig's validator
    index = _site_index([s.name for s in src.sites], site, "tabular")
    entry = src.sites[index]
    schema = load_schema(src.schema_path)
    check = check_site(schema, load_mapping(entry.mapping), csv or entry.csv, site=entry.name)
    if not check.ok:
        raise SiteDataError(refusal_message([check]))
    train, test = site_arrays(schema, check, src.test_fraction, src.split_seed, index)
    if len(train) == 0:
        raise SiteDataError(f"site {site!r} ({csv or entry.csv}) has no training rows")
    num_classes = len(schema.label.classes)
    return FederatedData(
        f"tabular:{schema.name}",
        [SiteData(site, train, test)],
        test,
        num_classes=num_classes,
        task="binary" if num_classes == 2 else "multiclass",
    )


def _omop_site(cfg: DataConfig, site: str, path: Path | None) -> FederatedData:
    from medsilo.data.schema import load_schema
    from medsilo.data.tabular_sites import site_arrays
    from medsilo.omop.cohort_spec import check_against_schema, load_cohort_spec
    from medsilo.omop.site_cohort import extract_site

    src = cfg.omop
    assert src is not None  # guaranteed by DataConfig's validator
    if path is not None:
        raise ValueError(
            f"site {site!r} reads its OMOP database through data.omop's dsn; a data path "
            "does not apply"
        )
    index = _site_index([s.name for s in src.sites], site, "omop")
    entry = src.sites[index]
    schema, spec = load_schema(src.schema_path), load_cohort_spec(src.spec)
    check_against_schema(spec, schema, str(src.spec))
    check = extract_site(entry.name, entry.dsn, entry.cdm_schema, spec, schema)
    train, test = site_arrays(schema, check, src.test_fraction, src.split_seed, index)
    return FederatedData(
        f"omop:{schema.name}", [SiteData(site, train, test)], test, num_classes=2, task="binary"
    )


def _fhir_site(cfg: DataConfig, site: str, bundles: Path | None) -> FederatedData:
    from medsilo.data.fhir_sites import check_fhir_site, load_fhir_spec
    from medsilo.data.tabular_sites import SiteDataError, site_arrays

    src = cfg.fhir
    assert src is not None  # guaranteed by DataConfig's validator
    index = _site_index([s.name for s in src.sites], site, "fhir")
    schema, spec = load_fhir_spec(src.schema_path, src.features)
    check = check_fhir_site(schema, spec, site, bundles or src.sites[index].bundles)
    if not check.ok:
        raise SiteDataError(check.message())
    train, test = site_arrays(schema, check, src.test_fraction, src.split_seed, index)
    return FederatedData(
        f"fhir:{schema.name}", [SiteData(site, train, test)], test, num_classes=2, task="binary"
    )


def _dicom_site(cfg: DataConfig, site: str, folder: Path | None) -> FederatedData:
    from medsilo.data.dicom_site import ingest_site
    from medsilo.data.site_split import split_site

    src = cfg.dicom
    assert src is not None  # guaranteed by DataConfig's validator
    index, entry = _own_entry(src.sites, site, "dicom", folder)
    data, _ = ingest_site(entry, src)
    train, test = split_site(data.x, data.y, src.test_fraction, src.split_seed, index)
    num_classes = len(src.classes)
    return FederatedData(
        "dicom",
        [SiteData(site, train, test)],
        test,
        num_classes=num_classes,
        task="binary" if num_classes == 2 else "multiclass",
    )


def _images_site(cfg: DataConfig, site: str, folder: Path | None) -> FederatedData:
    from medsilo.data.image_site import federation_of, read_labels_table, site_data

    src = cfg.images
    assert src is not None  # guaranteed by DataConfig's validator
    index, entry = _own_entry(src.sites, site, "images", folder)
    return federation_of([site_data(read_labels_table(entry, src), src, index)], src)
