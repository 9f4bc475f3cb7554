"""Assessment indicators: the latest prior result in ELA and in math.

For each as-of date and subject, the student's latest result dated strictly before
it, from the same or the previous school year (of two results on one day, the higher
score). Its scale score is standardised among the results of the same subject, school
year and grade that were also dated before the as-of date, so that a result still to
come cannot move the mean; with fewer than two such results the z-score is null. The
grade of a result is that of the student's latest stay entered on or before the test
date in that school year.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

SUBJECTS = ("ela", "math")
# School years back from the as-of date's in which a prior result is looked for.
LOOKBACK_YEARS = (0, 1)


def assessment_indicators(
    student_periods: ir.Table,
    assessments: ir.Table,
    stays: ir.Table,
    as_of_dates: ir.Table,
) -> ir.Table:
    """``ela_scale_z``, ``ela_proficient``, ``math_scale_z``, ``math_proficient``.

    One row per student and period of ``student_periods`` (``student_id``,
    ``as_of_date``); null where the student has no prior result in the subject.
    Proficiency is a 0/1 float.
    """
    lookback = ibis.memtable({"years_back": list(LOOKBACK_YEARS)})
    windows = as_of_dates.select("as_of_date", "school_year").cross_join(lookback)
    # Only the school years a window reads: the latest stay of each result is
    # picked with a window function, the dearest step here.
    in_windows = assessments.school_year.isin(
        windows.select(school_year=windows.school_year - windows.years_back)
        .distinct()
        .school_year
    )
    graded = _with_grade(
        assessments.filter(assessments.subject.isin(SUBJECTS), in_windows), stays
    )
    before = graded.join(
        windows,
        [
            graded.school_year == windows.school_year - windows.years_back,
            graded.date < windows.as_of_date,
        ],
    ).select(
        graded.student_id,
        windows.as_of_date,
        graded.school_year,
        graded.grade,
        graded.subject,
        graded.date,
        graded.scale_score,
        graded.proficient,
    )
    # Ordered, so that the peers' sums add up in the same order on every run (in
    # parallel they did not, and the z-scores moved in the 15th digit).
    peers = ibis.window(
        group_by=["as_of_date", "subject", "school_year", "grade"],
        order_by=["student_id", "date", "scale_score"],
        rows=(None, None),
    )
    spread = before.scale_score.std(how="sample").over(peers)
    before = before.mutate(
        scale_z=ibis.ifelse(
            spread > 0,
            (before.scale_score - before.scale_score.mean().over(peers)) / spread,
            ibis.null("float64"),
        )
    )
    latest_first = ibis.window(
        group_by=["student_id", "as_of_date", "subject"],
        order_by=[ibis.desc("date"), ibis.desc("scale_score")],
    )
    latest = before.mutate(rank=ibis.row_number().over(latest_first)).filter(
        ibis._.rank == 0
    )
    results = latest.group_by("student_id", "as_of_date").agg(
        **{
            f"{subject}_{measure}": value.max(where=latest.subject == subject)
            for subject in SUBJECTS
            for measure, value in (
                ("scale_z", latest.scale_z),
                ("proficient", latest.proficient.cast("float64")),
            )
        }
    )
    periods = student_periods.select("student_id", "as_of_date")
    joined = periods.left_join(results, ["student_id", "as_of_date"])
    return joined.select(
        periods.student_id,
        periods.as_of_date,
        *[results[name] for name in results.columns[2:]],
    )


def latest_results(assessments: ir.Table, subject: str) -> ir.Table:
    """The last result of each student and school year in ``subject``.

    Of two results on the last day, the higher score counts. Returns
    ``student_id``, ``school_year`` and ``proficient``.
    """
    tests = assessments.filter(assessments.subject == subject)
    last_first = ibis.window(
        group_by=["student_id", "school_year"],
        order_by=[ibis.desc("date"), ibis.desc("scale_score")],
    )
    return (
        tests.mutate(rank=ibis.row_number().over(last_first))
        .filter(ibis._.rank == 0)
        .select("student_id", "school_year", "proficient")
    )


def _with_grade(assessments: ir.Table, stays: ir.Table) -> ir.Table:
    """Attach the grade of the latest stay entered on or before each test date.

    Of two stays entered on the same day, the higher grade: each stay covers the
    dates from its entry to the next stay's (``next_entry`` of the stays).
    """
    matched = assessments.left_join(
        stays,
        [
            assessments.student_id == stays.student_id,
            assessments.school_year == stays.school_year,
            stays.entry_date <= assessments.date,
            stays.next_entry.isnull() | (assessments.date < stays.next_entry),
        ],
    )
    return matched.select(
        *[assessments[column] for column in assessments.columns],
        grade=stays.grade,
    )
