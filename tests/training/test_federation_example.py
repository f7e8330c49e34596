"""examples/federation/run.py: a whole consortium as separate processes, in one command."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_federation_example_runs_and_matches_plain_xgboost(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "examples" / "federation" / "run.py"),
                        "--n-patients", "300", "--rounds", "2", "--max-depth", "2",
                        "--dir", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("exit 0") == 5
    diff = float(p.stdout.rsplit("largest margin difference ", 1)[1].split()[0])
    assert diff <= 1e-5
    # each site's directory holds only its own data file and key
    for site in ("hospital_1", "hospital_2", "hospital_3", "insurer", "dealer"):
        names = {f.name for f in (tmp_path / "sites" / site).iterdir()}
        assert {n for n in names if n.endswith(".key")} == {f"{site}.key"}
        data = {n for n in names if n.endswith((".csv", ".parquet"))}
        own = f"{site}.{'parquet' if site == 'insurer' else 'csv'}"
        assert data == (set() if site == "dealer" else {own})
