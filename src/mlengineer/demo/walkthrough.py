"""The demo: which ML roles pay most, measured on the bundled AI/ML salary survey (CC0), beside what a
careers article claims, with a trained model's estimate for a typical profile."""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.split import row_content_keys

__all__ = ["GROUP", "GROUP_REASON", "ROLES", "TYPICAL_PROFILE", "DemoNumbers", "claim_verdict", "copy_groups",
           "demo_data_path", "demo_numbers", "holdout", "load_salaries", "money", "money_range", "percent", "role_table",
           "story_html"]

TARGET = "salary_in_usd"
LEAKY = ("salary", "salary_currency")  # the salary itself, in local currency: the answer in disguise


@dataclass(frozen=True)
class Role:
    name: str
    titles: tuple[str, ...]
    article: str | None = None  # the role's name in the article's claims, if it has one


ROLES = (
    Role("Machine Learning Engineer", ("Machine Learning Engineer",), "Machine Learning Engineer"),
    Role("AI Research Scientist / Research Scientist", ("AI Research Scientist", "Research Scientist"),
         "AI Research Scientist"),
    Role("Computer Vision Engineer", ("Computer Vision Engineer",), "Computer Vision Engineer"),
    Role("NLP Engineer", ("NLP Engineer",), "NLP Engineer"),
    Role("Big Data Engineer", ("Big Data Engineer",), "Big Data Engineer"),
    Role("AI Product Manager", ("AI Product Manager",), "AI Product Manager"),
    Role("Cloud Architect", ("Cloud Architect",), "Cloud Architect"),
    Role("Data Scientist", ("Data Scientist",)),
    Role("Data Engineer", ("Data Engineer",)),
)

#: the profile the model is asked about: a senior, full-time employee in the US, in the latest survey year
TYPICAL_PROFILE = {"experience_level": "SE", "employment_type": "FT", "employee_residence": "US",
                   "company_location": "US", "remote_ratio": 0, "company_size": "M"}
#: fewest records for a role's median, quartiles and model estimate to mean much: below it the role is
#: marked "too few records" everywhere (terminal, report, roles.csv) and its article claim is not judged
MIN_RECORDS = 30
#: fewest records for a role to headline the story: a median from a few dozen self-reports moves a lot
HEADLINE_RECORDS = 100
#: the column that numbers each distinct row, so exact copies stay on one side of every split
GROUP = "copy_group"
#: what the training summary says of that column, which training leaves out as its group column
GROUP_REASON = "added by the demo to number exact copies, so they stay on one side of every split; not a feature"


def demo_data_path(name: str = "salaries.csv.gz") -> Path:
    return Path(str(resources.files("mlengineer.demo") / "data" / name))


def load_salaries() -> pd.DataFrame:
    return pd.read_csv(demo_data_path())


def article_claims() -> pd.DataFrame:
    return pd.read_csv(demo_data_path("article_claims.csv"))


def role_table(df: pd.DataFrame, model: Any | None = None) -> pd.DataFrame:
    """One row per role: records, observed median and P25-P75, the article's claim, the model's estimate."""
    claims = article_claims().set_index("role")
    latest = int(df["work_year"].max())
    rows = []
    for role in ROLES:
        titles = df.loc[df["job_title"].isin(role.titles), "job_title"]
        sub = df.loc[titles.index, TARGET]
        row: dict[str, Any] = {"role": role.name, "records": int(len(sub))}
        if len(sub):
            q = np.percentile(sub, [25, 50, 75])
            row.update(p25=float(q[0]), median=float(q[1]), p75=float(q[2]))
        else:
            row.update(p25=np.nan, median=np.nan, p75=np.nan)
        claim = claims.loc[role.article] if role.article in claims.index else None
        if claim is not None and pd.notna(claim["claimed_low_usd"]):
            row["article"] = f"${claim['claimed_low_usd']:,.0f}-${claim['claimed_high_usd']:,.0f}"
        elif claim is not None and pd.notna(claim["claimed_average_usd"]):
            row["article"] = f"avg ${claim['claimed_average_usd']:,.0f}"
        else:
            row["article"] = ""
        if model is not None:
            # the role's most reported title: the model reads a title of a few records as rare, and would
            # answer for "AI Research Scientist" (8 records) what it answers for any rare title
            asked = str(titles.value_counts().index[0]) if len(titles) else role.titles[0]
            profile = pd.DataFrame([{**TYPICAL_PROFILE, "work_year": latest, "job_title": asked}])
            frame = model.predict_frame(profile, interval=0.5)
            row["model_typical"] = float(frame["prediction"].iloc[0])
            row["model_low"], row["model_high"] = float(frame["lower"].iloc[0]), float(frame["upper"].iloc[0])
            wide = model.predict_frame(profile, interval=0.9)
            row["model_low90"], row["model_high90"] = float(wide["lower"].iloc[0]), float(wide["upper"].iloc[0])
        row["enough_data"] = len(sub) >= MIN_RECORDS
        row["verdict"] = claim_verdict(row, claim)
        rows.append(row)
    return pd.DataFrame(rows)


def claim_verdict(row: dict[str, Any], claim: Any) -> str:
    """How an article's claim for a role stands against the survey's middle half (P25-P75) and median."""
    if claim is None:
        return ""
    if row["records"] < MIN_RECORDS:
        return f"too few survey records ({row['records']}) to check"
    low, high, avg = claim["claimed_low_usd"], claim["claimed_high_usd"], claim["claimed_average_usd"]
    if pd.notna(avg):
        gap = avg / row["median"] - 1
        if abs(gap) <= 0.1:
            return "is close to the survey's median"
        return f"is {abs(gap):.0%} {'above' if gap > 0 else 'below'} the survey's median"
    if high < row["median"]:
        return "is low: most reported salaries are above its top"
    if low > row["median"]:
        return "is high: most reported salaries are below its bottom"
    if low >= 0.9 * row["p25"] and high <= 1.1 * row["p75"]:
        return "matches the survey's middle half"
    if high < row["p75"] * 0.9:
        return "undersells the top half of the survey"
    if low > row["p25"] * 1.1:
        return "leaves out the bottom quarter of the survey"
    return "is wider than the survey's middle half"


def copy_groups(df: pd.DataFrame) -> pd.Series:
    """One number per distinct row content, the key the training's validation groups copies by
    (``row_content_keys``): rows that repeat each other exactly share it, in the train and the test split alike."""
    return pd.Series(row_content_keys(df), index=df.index, name=GROUP)


def holdout(df: pd.DataFrame, *, fraction: float = 0.2, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A train/test split of the survey that keeps exact copies together: about ``fraction`` of the distinct
    rows, with all their copies, are test rows, never shown to the model in training, and no test row has a
    twin among the training rows."""
    groups = copy_groups(df)
    unique = groups.unique()
    chosen = unique[np.random.default_rng(seed).random(len(unique)) < fraction]
    test = groups.isin(chosen)
    return df.loc[~test], df.loc[test]


@dataclass(frozen=True)
class DemoNumbers:
    """Every number the demo prints and writes, computed once: the terminal, the report's story and
    roles.csv all read them from here, so they cannot disagree."""

    rows: int
    titles: int
    first_year: int
    latest_year: int
    duplicate_share: float  # survey rows that repeat an earlier row exactly
    us_share: float
    recent_share: float  # rows from the latest two years
    train_rows: int
    test_rows: int
    train_duplicate_share: float  # training rows that repeat an earlier training row exactly
    test_twins: int  # test rows with an exact twin among the training rows: none, copies stay together
    roles: pd.DataFrame | None = None  # role_table, once there is a model
    test_mae: float | None = None  # the model's mean absolute error on every test row

    def with_model(self, model: Any, df: pd.DataFrame, test: pd.DataFrame) -> DemoNumbers:
        """These numbers and the model's: the role table and its error on the test rows."""
        pred = np.asarray(model.predict(test.drop(columns=[TARGET])), dtype=float)
        mae = float(np.abs(test[TARGET].to_numpy(dtype=float) - pred).mean())
        return replace(self, roles=role_table(df, model), test_mae=mae)


def demo_numbers(df: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame) -> DemoNumbers:
    """The survey's and the split's numbers (``with_model`` adds the model's)."""
    latest = int(df["work_year"].max())
    seen = set(copy_groups(train))
    return DemoNumbers(
        rows=len(df), titles=int(df["job_title"].nunique()), first_year=int(df["work_year"].min()), latest_year=latest,
        duplicate_share=float(df.duplicated().mean()), us_share=float((df["employee_residence"] == "US").mean()),
        recent_share=float(df["work_year"].isin([latest - 1, latest]).mean()), train_rows=len(train),
        test_rows=len(test), train_duplicate_share=float(train.duplicated().mean()),
        test_twins=int(copy_groups(test).isin(seen).sum()),
    )


_STORY = """
<h2>What do AI and ML jobs pay? What {{ "{:,}".format(n.rows) }} salaries say</h2>
<p>Careers articles quote tidy salary ranges and rarely say where they come from. The ai-jobs.net salary survey
(public domain, CC0) lets anyone check: {{ "{:,}".format(n.rows) }} reported salaries from {{ n.first_year }} to
{{ n.latest_year }}, across {{ n.titles }} job titles, converted to US dollars a year. Below, each role's figures from the
survey sit beside what a careers article, <i>Machine Learning Engineer Jobs</i>, claims, and beside what a model trained
on the survey would estimate for one typical profile: a {{ profile }}.</p>
<h3>Which roles pay most</h3>
<table>
<tr><th>role</th><th class="num">salaries reported</th><th class="num">survey median</th><th class="num">middle half of the survey (P25&ndash;P75)</th>
<th>the article claims</th><th>how the claim holds up</th><th class="num">model: typical profile</th><th class="num">model: 50% range</th><th class="num">model: 90% range</th></tr>
{% for r in roles %}<tr><td>{{ r.role }}</td><td class="num">{{ "{:,}".format(r.records) }}{% if not r.enough_data %} <span class="tag">too few records</span>{% endif %}</td><td class="num">{{ fmt(r.median) }}</td>
<td class="num">{{ fmt(r.p25) }} &ndash; {{ fmt(r.p75) }}</td><td>{{ r.article or "&ndash;"|safe }}</td><td>{{ r.verdict }}</td>
<td class="num">{{ fmt(r.model_typical) }}</td><td class="num">{{ fmt(r.model_low) }} &ndash; {{ fmt(r.model_high) }}</td>
<td class="num">{{ fmt(r.model_low90) }} &ndash; {{ fmt(r.model_high90) }}</td></tr>{% endfor %}
</table>
<p><b>The best paid of these roles</b>, among those with at least {{ headline }} reported salaries, is <b>{{ top.role }}</b>: half of
its {{ "{:,}".format(top.records) }} reported salaries lie between {{ fmt(top.p25) }} and {{ fmt(top.p75) }}, around a median of {{ fmt(top.median) }}.
{% for r in small_high %}{{ r.role }}s report a higher median ({{ fmt(r.median) }}), but from only {{ r.records }} salaries. {% endfor %}
{% for line in claims %}{{ line }} {% endfor %}</p>
<p><b>Ranges, not numbers.</b> A single figure hides how much salaries differ for the same job. Even knowing title,
seniority, country, company size, remote work and year, the model's estimate for one person is off by
{{ fmt(n.test_mae) }} on average (on the {{ "{:,}".format(n.test_rows) }} salaries kept apart to test it), and its 90% range
for a typical {{ top.role }} spans {{ fmt(width90) }}: that is how much salaries for the same profile really differ, and a
narrower range would be wrong for more people. Where a role has fewer than {{ min_records }} records (marked "too few records"
in the table: {{ few }}), neither the survey's quartiles nor the model's estimate says much, and the article's claim is not judged.</p>
<p><b>Read the survey with care.</b> {{ pct(n.duplicate_share) }} of its rows repeat an earlier row exactly (same year,
title, salary, currency, residence, company); some are different people with the same round salary, some are likely repeated
submissions. They were kept, as nobody can tell them apart, but every copy stays on one side of each split: the test rows
were drawn by row content, so {% if n.test_twins %}only {{ "{:,}".format(n.test_twins) }}{% else %}none{% endif %} of the
{{ "{:,}".format(n.test_rows) }} has a twin among the {{ "{:,}".format(n.train_rows) }} training rows, and the rows validation holds out of the training rows
({{ pct(n.train_duplicate_share) }} of which repeat another) are grouped the same way, so no score here is flattered by a
copy the model trained on. The salary in local currency (salary, salary_currency) is the answer in disguise: the demo leaves it
out with --drop, and the audit flags salary as target leakage as well. Self-reported salaries also lean towards people who
choose to report, mostly in the US ({{ pct(n.us_share) }} of rows), and mostly from {{ n.latest_year - 1 }} and
{{ n.latest_year }} ({{ pct(n.recent_share) }} of rows).</p>
"""


def story_html(numbers: DemoNumbers) -> str:
    """The demo's careers article, as an HTML section for the report: the role table with the survey's
    quartiles, the article's claims, the model's ranges, and the survey's caveats."""
    from jinja2 import Environment

    roles = numbers.roles
    if roles is None or numbers.test_mae is None:
        raise ValueError("story_html needs the model's numbers: DemoNumbers.with_model(...)")
    enough = roles.loc[roles["enough_data"]].sort_values("median", ascending=False)
    top = enough.loc[enough["records"] >= HEADLINE_RECORDS].iloc[0]
    small_high = [r._asdict() for r in enough.itertuples() if r.records < HEADLINE_RECORDS and r.median > top["median"]]
    claims = [f"For {r.role}, the article's {r.article} {r.verdict.split(':')[0]}." for r in enough.itertuples()
              if r.article and r.verdict]
    few = ", ".join(f"{r.role} ({r.records})" for r in roles.itertuples() if not r.enough_data) or "none"
    return Environment(autoescape=True).from_string(_STORY).render(
        n=numbers, roles=[r._asdict() for r in roles.itertuples()], fmt=money, pct=percent, top=top.to_dict(),
        claims=claims, headline=HEADLINE_RECORDS, small_high=small_high, min_records=MIN_RECORDS, few=few,
        profile=f"senior, full-time employee in the US, at a mid-sized US company, on site, in {numbers.latest_year}",
        width90=float(top["model_high90"] - top["model_low90"]),
    )


def money(v: float | None) -> str:
    """Dollars as the demo writes them everywhere: $134,000."""
    return "-" if v is None or v != v else f"${v:,.0f}"


def money_range(low: float | None, high: float | None) -> str:
    """A range in thousands, for narrow places such as the terminal's table: $144k-$244k."""
    if low is None or high is None or low != low or high != high:
        return "-"
    return f"${low / 1000:,.0f}k-${high / 1000:,.0f}k"


def percent(share: float) -> str:
    """A share as the demo writes it everywhere: 49%."""
    return f"{share:.0%}"
