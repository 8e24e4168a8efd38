"""The documents match the code: every Dagster job the README names exists, every page under docs/ is linked
from the README, every image under docs/img/ is shown by some page, and every reassignment config field that
docs/reassignment.md names is a field of its job's config."""

from __future__ import annotations

import re
from pathlib import Path

from orchestration.definitions import defs
from orchestration.defs.reassignment.jobs import ExecuteConfig, PlanConfig

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def markdown_pages() -> list[Path]:
    return [p for p in ROOT.rglob("*.md") if not {".venv", ".kdp", "node_modules"} & set(p.parts)]


def test_job_names_in_the_readme_are_jobs():
    jobs = {job.name for job in defs.jobs or []}
    # "provision_topics job ..." and the diagram's "plan_x / execute_x jobs"
    named = set(re.findall(r"\b(\w+_\w+) jobs?\b", README))
    named |= {name for pair in re.findall(r"(\w+_\w+) / (\w+_\w+) jobs", README) for name in pair}
    assert named and named <= jobs, named - jobs
    assert {"plan_partition_reassignment", "execute_partition_reassignment"} <= named


def test_every_doc_page_is_linked_from_the_readme():
    linked = set(re.findall(r"\]\((docs/[\w./-]+\.md)", README))
    pages = {str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, pages - linked


def test_every_image_is_shown():
    shown = {img for page in markdown_pages() for img in re.findall(r"\]\(([\w./-]+\.png)\)", page.read_text())}
    names = {Path(img).name for img in shown}
    unshown = [p.name for p in (ROOT / "docs" / "img").glob("*.png") if p.name not in names]
    assert unshown == []


def test_reassignment_page_names_only_real_config_fields():
    page = (ROOT / "docs" / "reassignment.md").read_text(encoding="utf-8")
    for job, config in (("plan_partition_reassignment", PlanConfig), ("execute_partition_reassignment", ExecuteConfig)):
        listed = re.search(rf"`{job}` \(config: ([^)]*)\)", page)
        assert listed, job
        fields = set(re.findall(r"\w+", listed.group(1).replace(" or ", ", "))) - {"or"}
        assert fields == set(config.model_fields), (job, fields ^ set(config.model_fields))
