"""The demo: which ML roles pay most, measured on the bundled AI/ML salary survey (CC0), beside what a
careers article claims, with a trained model's estimate for a typical profile."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ROLES", "TYPICAL_PROFILE", "demo_data_path", "load_salaries", "role_table"]

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
            row["article"] = f"{claim['claimed_low_usd']:,.0f}-{claim['claimed_high_usd']:,.0f}"
        elif claim is not None and pd.notna(claim["claimed_average_usd"]):
            row["article"] = f"avg {claim['claimed_average_usd']:,.0f}"
        else:
            row["article"] = ""
        if model is not None:
            profile = {**TYPICAL_PROFILE, "work_year": latest, "job_title": role.titles[0]}
            frame = model.predict_frame(pd.DataFrame([profile]), interval=0.5)
            row["model_typical"] = float(frame["prediction"].iloc[0])
            row["model_low"], row["model_high"] = float(frame["lower"].iloc[0]), float(frame["upper"].iloc[0])
        row["enough_data"] = len(sub) >= MIN_RECORDS
        rows.append(row)
    return pd.DataFrame(rows)

