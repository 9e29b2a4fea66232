"""The demo: which ML roles pay most, measured on the bundled AI/ML salary survey (CC0), beside what a
careers article claims, with a trained model's estimate for a typical profile."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ROLES", "TYPICAL_PROFILE", "claim_verdict", "demo_data_path", "holdout", "load_salaries", "role_table",
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
MIN_RECORDS = 10
#: fewest records for a role to headline the story: a median from a few dozen self-reports moves a lot
HEADLINE_RECORDS = 100


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
        sub = df.loc[df["job_title"].isin(role.titles), TARGET]
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
            profile = pd.DataFrame([{**TYPICAL_PROFILE, "work_year": latest, "job_title": role.titles[0]}])
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


def holdout(df: pd.DataFrame, *, fraction: float = 0.2, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random train/test split of the survey; the test rows are never shown to the model in training."""
    test = df.sample(frac=fraction, random_state=seed)
    return df.drop(index=test.index), test


_STORY = """
<h2>What do AI and ML jobs pay? What {{ "{:,}".format(n_rows) }} salaries say</h2>
<p>Careers articles quote tidy salary ranges and rarely say where they come from. The ai-jobs.net salary survey
(public domain, CC0) lets anyone check: {{ "{:,}".format(n_rows) }} reported salaries from {{ years }}, across
{{ n_titles }} job titles, converted to US dollars a year. Below, each role's figures from the survey sit beside what a
careers article, <i>Machine Learning Engineer Jobs</i>, claims, and beside what a model trained on the survey would
estimate for one typical profile: a {{ profile }}.</p>
<h3>Which roles pay most</h3>
<table>
<tr><th>role</th><th class="num">salaries reported</th><th class="num">survey median</th><th class="num">middle half of the survey (P25&ndash;P75)</th>
<th>the article claims</th><th>how the claim holds up</th><th class="num">model: typical profile</th><th class="num">model: 50% range</th><th class="num">model: 90% range</th></tr>
{% for r in roles %}<tr><td>{{ r.role }}</td><td class="num">{{ "{:,}".format(r.records) }}</td><td class="num">{{ fmt(r.median) }}</td>
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
{{ fmt(mae) }} on average, and its 90% range for a typical {{ top.role }} spans {{ fmt(width90) }}: that is how much
salaries for the same profile really differ, and a narrower range would be wrong for more people. Where a role has few records
(marked in the table), neither the survey's quartiles nor the model's estimate says much.</p>
<p><b>Read the survey with care.</b> {{ "%.0f"|format(dup_share * 100) }}% of its rows repeat an earlier row exactly (same year,
title, salary, currency, residence, company); some are different people with the same round salary, some are likely repeated
submissions. They were kept, as nobody can tell them apart; {{ "%.0f"|format(test_copy_share * 100) }}% of the test rows used
below have an exact twin among the training rows, and on the {{ "{:,}".format(n_fresh) }} that have none the model is off by
{{ fmt(mae_fresh) }} on average (against {{ fmt(mae) }} on all test rows). Self-reported salaries also lean towards
people who choose to report, mostly in the US ({{ "%.0f"|format(us_share * 100) }}% of rows), and mostly from {{ recent }}.</p>
"""


def story_html(df: pd.DataFrame, roles: pd.DataFrame, model: Any, train: pd.DataFrame, test: pd.DataFrame) -> str:
    """The demo's careers article, as an HTML section for the report: the role table with the survey's
    quartiles, the article's claims, the model's ranges, and the survey's caveats."""
    from jinja2 import Environment

    def fmt(v: float) -> str:
        return "-" if v is None or v != v else f"${v:,.0f}"

    enough = roles.loc[roles["enough_data"]].sort_values("median", ascending=False)
    top = enough.loc[enough["records"] >= HEADLINE_RECORDS].iloc[0]
    small_high = [r._asdict() for r in enough.itertuples() if r.records < HEADLINE_RECORDS and r.median > top["median"]]
    claims = []
    for r in enough.itertuples():
        if r.article and r.verdict:
            claims.append(f"For {r.role}, the article's {r.article} {r.verdict.split(':')[0]}.")
    features = [c for c in model.feature_names]
    pred = model.predict(test[features])
    err = np.abs(test[TARGET].to_numpy(dtype=float) - np.asarray(pred, dtype=float))
    key = [c for c in df.columns]
    seen = pd.MultiIndex.from_frame(train[key])
    has_copy = pd.MultiIndex.from_frame(test[key]).isin(seen)
    latest = int(df["work_year"].max())
    mle = roles.set_index("role").loc[top["role"]]
    return Environment(autoescape=True).from_string(_STORY).render(
        n_rows=len(df), years=f"{df['work_year'].min()} to {latest}", n_titles=df["job_title"].nunique(),
        profile="senior, full-time employee in the US, at a mid-sized US company, on site, in " + str(latest),
        roles=[r._asdict() for r in roles.itertuples()], fmt=fmt, top=top.to_dict(), claims=claims,
        headline=HEADLINE_RECORDS, small_high=small_high,
        mae=float(err.mean()), width90=float(mle["model_high90"] - mle["model_low90"]),
        dup_share=float(df.duplicated().mean()), test_copy_share=float(has_copy.mean()),
        n_fresh=int((~has_copy).sum()), mae_fresh=float(err[~has_copy].mean()) if (~has_copy).any() else float("nan"),
        us_share=float((df["employee_residence"] == "US").mean()),
        recent=f"{latest - 1} and {latest} ({df['work_year'].isin([latest - 1, latest]).mean():.0%} of rows)",
    )

