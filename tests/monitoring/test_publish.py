"""``publish_indicators`` on the synthetic district: files, numbers and privacy."""

import base64
import json
import re

import pandas as pd
import pytest

from monitoring import publish_indicators
from monitoring._disclosure_audit import audit_public_rows
from monitoring._progress import progress_cells, project_cells, use_school_projections

# Columns that only ever describe one student; none may appear in a public file.
STUDENT_LEVEL_COLUMNS = (
    "student_id",
    "first_name",
    "last_name",
    "birth_date",
    "risk",
    "tier",
    "driver_1",
    "driver_1_feature",
    "days_absent",
    "attendance_rate",
    "failing_marks",
    "ela_scale_z",
)


@pytest.fixture(scope="module")
def published(synthetic_district):
    config, students = synthetic_district
    summary = publish_indicators(config)
    public = config.state_dir / "public"
    return {
        "summary": summary,
        "students": students,
        "config": config,
        "html": (public / "index.html").read_text(encoding="utf-8"),
        "json": json.loads((public / "indicators.json").read_text(encoding="utf-8")),
        "json_text": (public / "indicators.json").read_text(encoding="utf-8"),
        "csv": pd.read_csv(public / "indicators.csv", dtype={"school_id": str}),
        "csv_text": (public / "indicators.csv").read_text(encoding="utf-8"),
    }


def test_summary_names_the_three_files_and_the_suppressions(published):
    summary = published["summary"]
    text = summary.describe()

    assert str(summary.page) in text and summary.page.name == "index.html"
    assert str(summary.json_path) in text and str(summary.csv_path) in text
    assert f"{summary.primary_suppressed} under the minimum n" in text
    assert f"{summary.complementary_suppressed} complementary" in text
    # 4 schools + district, by all students and 5 dimensions, for 3 KPIs.
    assert (
        summary.n_rows == len(published["csv"]) == len(published["json"]["indicators"])
    )


def test_no_student_level_field_in_any_public_file(published):
    students = published["students"]
    # The charts are base64 SVG: scan their decoded text, not the encoding.
    uris = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', published["html"])
    texts = {
        "html": re.sub(r'src="data:[^"]+"', "", published["html"]),
        "svg": "".join(base64.b64decode(uri).decode("utf-8") for uri in uris),
        "json": published["json_text"],
        "csv": published["csv_text"],
    }
    json_keys = set(published["json"]) | set(published["json"]["indicators"][0])
    csv_columns = set(published["csv"].columns)
    for column in STUDENT_LEVEL_COLUMNS:
        assert column not in json_keys
        assert column not in csv_columns
    for name, text in texts.items():
        for column in ("student_id", "first_name", "birth_date", "driver_1"):
            assert column not in text, (name, column)
        ids = set(re.findall(r"S\d{8}", text))
        assert not ids & set(students["student_id"]), name
        assert "2012-03-04" not in text, name
        for first_name in students["first_name"].unique():
            assert first_name not in text, (name, first_name)


def test_suppressed_rows_publish_nothing_and_visible_rows_meet_min_n(published):
    rows = published["csv"]
    min_n = published["config"].privacy.min_n
    suppressed = rows[rows["status"] == "suppressed"]
    value_columns = ["n_size", "n_missed", "rate_so_far", "projected_rate", "on_track"]

    assert len(suppressed) > 0
    assert suppressed[value_columns].isna().all().all()
    assert (suppressed["rate_so_far_text"] == "suppressed").all()
    assert (rows.loc[rows["n_size"].notna(), "n_size"] >= min_n).all()
    ranged = rows[rows["status"] == "range"]
    assert ranged["n_missed"].isna().all() and ranged["rate_so_far"].isna().all()
    assert ranged["n_size"].isna().all()


def test_district_figures_match_the_students(published):
    config, students = published["config"], published["students"]
    snapshots = pd.read_parquet(
        config.state_dir / "snapshots" / "student_snapshots.parquet"
    )
    current = snapshots[snapshots["as_of_date"] == snapshots["as_of_date"].max()]
    chronic = (current["days_absent"] >= 0.1 * current["days_enrolled"]).sum()
    rows = published["csv"].set_index(["kpi", "school_id", "dimension", "group"])
    district = rows.loc[("chronic_absence", "district", "all", "all")]

    assert district["n_size"] == len(students)
    assert district["n_missed"] == chronic
    assert district["rate_so_far"] == round(chronic / len(students), 3)
    assert district["target"] == 0.22
    # Final marks and the state test come at the end of the year: no count so far,
    # whatever the group.
    for kpi in ("course_failure", "not_proficient_ela"):
        later = published["csv"][published["csv"]["kpi"] == kpi]
        assert later["n_missed"].isna().all()
        texts = set(later["rate_so_far_text"])
        assert "not yet known" in texts
        assert texts <= {"not yet known", "suppressed", "no students"}


def test_schools_are_named_from_the_warehouse(published):
    names = published["csv"].drop_duplicates("school_id").set_index("school_id")

    assert names["school_name"].to_dict() == {
        "0001": "Maple School",
        "0002": "Cedar School",
        "0003": "Oak School",
        "0004": "Elm School",
        "district": "District",
    }
    assert "Doe" not in published["json_text"] + published["csv_text"]


def test_school_targets_apply_to_the_school_and_its_groups(published):
    rows = published["csv"]
    failure = rows[rows["kpi"] == "course_failure"]

    assert set(failure.loc[failure["school_id"] == "0001", "target"]) == {0.12}
    assert set(failure.loc[failure["school_id"] == "0002", "target"]) == {0.15}


def test_published_rows_pass_the_audit_and_a_leak_is_caught(published):
    rows = published["csv"]
    chronic = rows[rows["kpi"] == "chronic_absence"].copy()
    config = published["config"]
    scored = pd.read_parquet(config.state_dir / "scores" / "scored_snapshot.parquet")
    snapshots = pd.read_parquet(
        config.state_dir / "snapshots" / "student_snapshots.parquet"
    )
    current = snapshots[snapshots["as_of_date"] == snapshots["as_of_date"].max()]
    status = current.set_index("student_id")
    students = scored[scored["kpi"] == "chronic_absence"].assign(
        missed_so_far=lambda s: (
            s["student_id"]
            .map(status["days_absent"] >= 0.1 * status["days_enrolled"])
            .astype(float)
        )
    )
    cells = progress_cells(
        students, list(config.privacy.protected_attributes), "missed_so_far"
    )

    audit_public_rows(chronic, cells, "this_year", "chronic")

    leaked = chronic.copy()
    position = leaked.index[leaked["status"] == "suppressed"][0]
    leaked.loc[position, "n_size"] = 7
    with pytest.raises(ValueError, match=r"publishes n_size; it must be empty"):
        audit_public_rows(leaked, cells, "this_year", "chronic")


def test_page_has_alt_text_and_a_table_for_every_chart(published):
    html = published["html"]
    images = re.findall(r"<img [^>]*>", html)

    assert len(images) == 6  # two charts per KPI
    for image in images:
        assert re.search(r'alt="[^"]{40,}"', image)
        assert 'src="data:image/svg+xml;base64,' in image
    assert html.count("<table>") >= 6
    assert "<script" not in html
    assert "Published with OnTrack" in html


def test_group_projection_is_the_mean_risk_with_a_normal_interval():
    students = pd.DataFrame(
        {
            "school_id": ["A"] * 4,
            "gender": ["female", "female", "male", "male"],
            "missed": [0.0, 1.0, 0.0, 0.0],
            "risk": [0.5, 0.5, 0.1, 0.3],
        }
    )
    cells = project_cells(
        progress_cells(students, ["gender"], "missed"), lambda school_id: 0.25
    ).set_index(["school_id", "group"])

    female = cells.loc[("A", "female")]
    assert female["projected_rate"] == 0.5
    # sd of the count: sqrt(0.25 + 0.25) = 0.7071; 1.6449 * 0.7071 / 2 = 0.5815.
    assert female["projected_low"] == 0.0
    assert female["projected_high"] == 1.0
    district = cells.loc[("district", "all")]
    assert district["projected_rate"] == pytest.approx(1.4 / 4)
    assert district["n_missed"] == 1
    # Target 0.25 of 4 students: 2 or more missing misses it. Mean 1.4, variance
    # 0.25 + 0.25 + 0.09 + 0.21 = 0.8; P(N(1.4, 0.8) > 1.5) = 0.4555.
    assert district["p_miss_target"] == pytest.approx(0.45549, abs=1e-5)


def test_school_projections_replace_the_all_students_approximation():
    students = pd.DataFrame(
        {"school_id": ["A", "A"], "gender": ["female", "male"], "missed": [0.0, 1.0]}
    ).assign(risk=[0.2, 0.6])
    cells = project_cells(progress_cells(students, ["gender"], "missed"), lambda s: 0.5)
    exact = pd.DataFrame(
        {
            "school_id": ["A", "district"],
            "expected_rate": [0.4, 0.4],
            "rate_low": [0.0, 0.0],
            "rate_high": [1.0, 1.0],
            "p_miss_target": [0.12, 0.12],
        }
    )

    updated = use_school_projections(cells, exact).set_index(["school_id", "group"])

    assert updated.loc[("A", "all"), "p_miss_target"] == 0.12
    assert updated.loc[("A", "female"), "projected_rate"] == pytest.approx(0.2)


def test_a_group_seen_only_last_year_is_published_as_empty_this_year(published):
    rows = published["csv"]
    unseen = rows[(rows["group"] == "not_reported") & (rows["dimension"] == "gender")]

    # Twelve labelled students of 2025 had no snapshot, hence no attributes.
    assert set(unseen["school_id"]) == {"0001", "0002", "0003", "0004", "district"}
    assert set(unseen["status"]) == {"no students"}
    last_year = unseen.groupby("school_id")["last_year_status"].agg(set)
    assert last_year["0002"] == {"no students"}
    # Twelve students, but the rows through them had to hide it for some KPIs.
    assert last_year["district"] <= {"shown", "suppressed"}
    assert last_year["0001"] <= {"shown", "suppressed"}


def test_so_far_rates_match_the_score_stage_projections_on_the_same_snapshot(
    published,
):
    from training._jobs import observed_so_far
    from training._projections import school_projections

    config, kpi = published["config"], published["config"].kpi("chronic_absence")
    state = config.state_dir
    scored = pd.read_parquet(state / "scores" / "scored_snapshot.parquet")
    snapshots = pd.read_parquet(state / "snapshots" / "student_snapshots.parquet")
    as_of = scored["as_of_date"].max()
    scored = scored[(scored["as_of_date"] == as_of) & (scored["kpi"] == kpi.name)]
    rows = scored[["student_id", "school_id", "risk"]].merge(
        snapshots[snapshots["as_of_date"] == as_of].drop(columns="school_id"),
        on="student_id",
    )
    risks = rows[["school_id", "risk"]].assign(
        kpi=kpi.name, observed_so_far=observed_so_far(rows, kpi)
    )
    schools = sorted(risks["school_id"].unique())
    targets = {(school, kpi.name): 0.22 for school in [*schools, "district"]}
    projected = school_projections(risks, targets).set_index("school_id")
    public = published["csv"]
    shown = public[
        (public["kpi"] == kpi.name)
        & (public["dimension"] == "all")
        & public["rate_so_far"].notna()
    ].set_index("school_id")

    assert len(shown) >= 3
    for school_id, row in shown.iterrows():
        assert row["rate_so_far"] == round(
            projected.loc[str(school_id), "observed_rate_so_far"], 3
        ), school_id


def test_so_far_is_worded_as_a_rate_that_can_still_change():
    from monitoring._jobs import disclosure_rules

    (so_far,) = [rule for rule in disclosure_rules(10) if rule.startswith("'So far'")]

    assert so_far.startswith(
        "'So far' is the share of students chronically absent so far this year, on "
        "the days enrolled up to the snapshot date; it can still change by year end"
    )
    assert "already missed" not in so_far
