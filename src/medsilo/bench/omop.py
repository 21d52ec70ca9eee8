"""``medsilo bench omop``: one OMOP site's cohort extraction on a synthetic population.

A throwaway PostgreSQL cluster (:mod:`medsilo.omop.postgres_cluster`; needs PostgreSQL's
server binaries, nothing else) gets a synthetic CDM of ``patients`` persons
(:mod:`medsilo.omop.synthetic_cdm`, through ``COPY``) and a consent-restricted reader role.
A fresh process then does what a site process does before training: connect as the reader,
run every check (tables, role, concepts, units), run the heart-disease specification's
cohort query (``examples/omop/heart_cohort.yaml``, bundled with medsilo as
:data:`SPEC`) and map the rows onto the schema. Reported: the seconds that took, the
process's peak resident memory before and after it, the rows extracted, and the database's
size on disk. Nothing is asserted; the numbers are printed and written to
``OUT/omop.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from medsilo.omop.consent_access import create_consent_reader
from medsilo.omop.postgres_cluster import Cluster, server_account, server_binaries
from medsilo.omop.synthetic_cdm import write_synthetic_cdm

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "omop"
SPEC = EXAMPLES / "heart_cohort.yaml"
SCHEMA = EXAMPLES / "heart_schema.yaml"
DATABASE, CDM_SCHEMA, READER = "bench", "cdm", "bench_reader"


@dataclass
class OmopBench:
    patients: int
    written_rows: int
    write_s: float  # generating the population and COPYing it in, one transaction, ANALYZE
    database_mib: float  # pg_database_size after writing
    extract_s: float  # checks + cohort query + schema mapping, in the site process
    site_cpu_s: float  # the site process's own CPU time in it (the rest: the database, waiting)
    cohort_rows: int  # persons the cohort query returned (consented, not excluded)
    site_peak_mib_before: float  # the site process's peak RSS after its imports
    site_peak_mib: float  # ... and after the extraction
    load_average: float  # the machine's 1-minute load average when done (timings are wall)


# The peak is the process's own high-water mark (VmHWM): Linux carries ru_maxrss over from
# the parent across fork and exec, so it would count the generator's memory too.
_SITE_CHILD = """
import json, resource, sys, time
from pathlib import Path
from medsilo.bench.omop import peak_rss_kib
from medsilo.data.schema import load_schema
from medsilo.omop.cohort_spec import load_cohort_spec
from medsilo.omop.site_cohort import extract_site
dsn, cdm_schema, schema_path, spec_path = sys.argv[1:5]
schema, spec = load_schema(Path(schema_path)), load_cohort_spec(Path(spec_path))
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
before, cpu0 = peak_rss_kib(), cpu()
t0 = time.perf_counter()
check = extract_site("bench", dsn, cdm_schema, spec, schema)
seconds, cpu_s = time.perf_counter() - t0, cpu() - cpu0
peak = peak_rss_kib()
print(json.dumps({"seconds": seconds, "cpu_s": cpu_s, "rows": check.rows, "before_kib": before,
                  "peak_kib": peak}))
"""


def peak_rss_kib() -> int:
    """This process's peak resident memory (KiB): ``VmHWM`` of ``/proc/self/status``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmHWM line (Linux only)")


def measure_site_extraction(dsn: str, cdm_schema: str) -> dict[str, float]:
    """Run the extraction in a fresh process: seconds, rows and peak memory (KiB) of it."""
    done = subprocess.run(
        [sys.executable, "-c", _SITE_CHILD, dsn, cdm_schema, str(SCHEMA), str(SPEC)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the site extraction failed:\n{done.stderr[-4000:]}")
    measured: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def bench_on_cluster(cluster: Cluster, patients: int, seed: int) -> OmopBench:
    """Write the population into ``cluster`` and measure one site's extraction."""
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    with psycopg.connect(cluster.dsn(dbname=DATABASE)) as conn:
        t0 = time.perf_counter()
        written = write_synthetic_cdm(conn, CDM_SCHEMA, patients, seed)
        write_s = time.perf_counter() - t0
        create_consent_reader(conn, CDM_SCHEMA, READER)
        (size,) = conn.execute("SELECT pg_database_size(current_database())").fetchone() or (0,)
    site = measure_site_extraction(cluster.dsn(READER, DATABASE), CDM_SCHEMA)
    return OmopBench(
        patients=patients,
        written_rows=sum(written.values()),
        write_s=write_s,
        database_mib=size / 2**20,
        extract_s=site["seconds"],
        site_cpu_s=site["cpu_s"],
        cohort_rows=int(site["rows"]),
        site_peak_mib_before=site["before_kib"] / 1024,
        site_peak_mib=site["peak_kib"] / 1024,
        load_average=os.getloadavg()[0],
    )


def run_omop_benchmark(patients: int, seed: int, out_dir: Path, console: Console) -> OmopBench:
    """Start a throwaway cluster, measure, stop it; print and write ``out_dir/omop.json``."""
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL "
            "(Debian: apt-get install postgresql)"
        )
    with tempfile.TemporaryDirectory(prefix="medsilo-bench-pg-") as folder:
        cluster = Cluster(Path(folder), binaries, server_account())
        cluster.start()
        try:
            result = bench_on_cluster(cluster, patients, seed)
        finally:
            cluster.stop()
    table = Table(title=f"OMOP site extraction, {patients:,} synthetic patients")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("rows written (all tables)", f"{result.written_rows:,}")
    table.add_row("writing (COPY, one transaction, ANALYZE)", f"{result.write_s:.2f} s")
    table.add_row("database size", f"{result.database_mib:.1f} MiB")
    table.add_row("cohort rows extracted", f"{result.cohort_rows:,}")
    table.add_row("extraction (checks, cohort query, mapping)", f"{result.extract_s:.2f} s")
    table.add_row("  of which the site process's own CPU", f"{result.site_cpu_s:.2f} s")
    table.add_row("site process peak RSS, after imports", f"{result.site_peak_mib_before:.0f} MiB")
    table.add_row("site process peak RSS, after extraction", f"{result.site_peak_mib:.0f} MiB")
    table.add_row("machine load average (1 min) when done", f"{result.load_average:.1f}")
    console.print(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "omop.json").write_text(json.dumps(asdict(result), indent=2))
    console.print(f"wrote {out_dir / 'omop.json'}")
    return result
