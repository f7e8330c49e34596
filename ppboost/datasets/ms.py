"""Synthetic early-diagnosis data for multiple sclerosis (MS) across hospitals.

The scenario follows published early-diagnosis studies of MS that trained
XGBoost on electronic health records, with three kinds of features
(diagnostic, epidemiologic, laboratory), and the MS-prodrome literature
(e.g. Wijnands et al., Lancet Neurology 2017: more physician visits and more
prescriptions in the years before diagnosis).  An insurer adds one column the
hospitals lack: reimbursements for past medication.  **The data is synthetic**;
the numbers below are chosen to be plausible and to give a model worth
training, not estimated from any study.

Columns
-------
Hospital columns (every hospital has all of them):

================== ===== ====================================================
column             type  values
================== ===== ====================================================
age                q     integer years, 18..80
female             q     1 = female, 0 = male
n_visits           q     total hospital visits in the last 5 years, 0..40
adem               q     1 = acute disseminated encephalomyelitis on record
optic_neuritis     q     1 = optic neuritis on record
hyperlipidemia     q     1 / 0, NaN if the lipid panel was not done
hyperglycemia      q     1 / 0, NaN if the glucose test was not done
vitamin_d          q     25(OH)D in ng/mL, integer 5..60, NaN if not measured
region             c     the patient's home region: north, central, south,
                         coast (a pandas 'category' column)
================== ===== ====================================================

Insurer column (for the same patients): ``med_reimbursements``, the
reimbursements for medication over the last 2 years in units of 100 EUR,
integer 0..50.

Generating model
----------------
For hospital h (h = 0 .. H-1, t = h / (H-1), t = 0 when H == 1):

* age ~ round(Normal(mu_h, 13)) clipped to [18, 80] with mu_h = 52 - 14 t
  (hospital 0 is a general hospital with older patients, the last one an MS
  referral centre with younger ones);
* female ~ Bernoulli(0.52); adem ~ Bernoulli(0.02 + 0.03 t);
  optic_neuritis ~ Bernoulli(0.03 + 0.04 t);
* hyperlipidemia ~ Bernoulli(clip(0.10 + 0.006 (age - 40), 0.02, 0.6)),
  hyperglycemia ~ Bernoulli(clip(0.06 + 0.004 (age - 40), 0.02, 0.5));
  vitamin_d ~ round(Normal(27 - 4 [north], 8)) clipped to [5, 60];
* region ~ Categorical(p_h), p_h moving from (north .4, central .3, south .2,
  coast .1) at t = 0 to (.15, .25, .35, .25) at t = 1;
* then the label, from a logistic model:

      logit P(MS) = b0_h + 0.90 female + 1.10 [20 <= age <= 40]
                    - 0.025 max(age - 40, 0) + 2.20 adem + 1.90 optic_neuritis
                    + 0.35 hyperlipidemia + 0.15 hyperglycemia
                    - 0.045 (vitamin_d - 27) + 0.55 [region == north]

  (effect directions as in the literature: female sex, age 20-40, ADEM,
  optic neuritis, low vitamin D, higher latitude raise the risk;
  hyperlipidemia and hyperglycemia are modest comorbidity signals).  The
  intercept b0_h is solved (bisection) so that hospital h's mean risk equals
  its prevalence pi_h = 0.04 + 0.14 t: 4 % at the general hospital up to
  18 % at the referral centre (default 3 hospitals: 4 %, 11 %, 18 %).
* after the label (the prodrome: patients developing MS use more care):
  n_visits ~ Poisson(3 + 0.04 (age - 18) + 2 y + 1.5 adem) clipped to 40;
  med_reimbursements ~ round(Gamma(shape 2, scale 2.5 + 3 y)) clipped to 50;
* missing lab values, missing completely at random, at a rate m_h = 0.10 +
  0.35 t for the lipid panel and the glucose test, and 0.25 + 0.35 t for
  vitamin D.

The test set is drawn from the same hospitals, in the same proportions as
the training set.  Hospital sizes are proportional to 1 + 0.5 (H - 1 - h) /
max(H - 1, 1) (the general hospital is the largest).

Distinct values and ``max_bin``
-------------------------------
Every column is an integer or a flag with at most 63 distinct values (age:
63, n_visits: 41, vitamin_d: 56, med_reimbursements: 51; region: 4
categories), so with ``max_bin >= 64`` xgboost's ``hist`` gives every value
its own bin and secure training can reproduce plain xgboost exactly (the
training issue's "same model" property).  ``region`` has 4 categories and
ppboost splits categorical features one-vs-rest; plain xgboost does that only
for features with fewer than ``max_cat_to_onehot`` categories (default 4), so
pass ``max_cat_to_onehot=5`` (or more) to plain xgboost when comparing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..data import HorizontalSplit, MixedSplit, VerticalSplit

__all__ = ["MSHospitals", "make_ms_hospitals", "HOSPITAL_COLUMNS", "INSURER_COLUMN",
           "REGIONS", "COEFFICIENTS", "MAX_DISTINCT_VALUES"]

REGIONS = ("north", "central", "south", "coast")
HOSPITAL_COLUMNS = ("age", "female", "n_visits", "adem", "optic_neuritis", "hyperlipidemia",
                    "hyperglycemia", "vitamin_d", "region")
INSURER_COLUMN = "med_reimbursements"
MAX_DISTINCT_VALUES = 63

#: coefficients of the logistic model (see the module docstring)
COEFFICIENTS = {
    "female": 0.90,
    "age_20_40": 1.10,
    "age_over_40_per_year": -0.025,
    "adem": 2.20,
    "optic_neuritis": 1.90,
    "hyperlipidemia": 0.35,
    "hyperglycemia": 0.15,
    "vitamin_d_per_ng_ml_above_27": -0.045,
    "region_north": 0.55,
}

FEATURE_DESCRIPTIONS = {
    "age": "age in years (epidemiologic)",
    "female": "1 = female (epidemiologic)",
    "n_visits": "total hospital visits, last 5 years (epidemiologic)",
    "adem": "acute disseminated encephalomyelitis on record (diagnostic)",
    "optic_neuritis": "optic neuritis on record (diagnostic)",
    "hyperlipidemia": "hyperlipidemia, NaN if not tested (laboratory)",
    "hyperglycemia": "hyperglycemia, NaN if not tested (laboratory)",
    "vitamin_d": "25(OH)D ng/mL, NaN if not measured (laboratory)",
    "region": "home region, categorical",
    INSURER_COLUMN: "insurer: medication reimbursed, last 2 years, units of 100 EUR",
}


@dataclass
class MSHospitals:
    """What :func:`make_ms_hospitals` returns.

    Attributes
    ----------
    hospitals : dict name -> (DataFrame of HOSPITAL_COLUMNS, labels)
        Each hospital's own patients (its rows).
    insurer : DataFrame with the one column ``med_reimbursements``
        For every training patient, in pooled order (hospital 1's patients,
        then hospital 2's, ...).
    horizontal : HorizontalSplit      the hospitals only (no insurer column)
    vertical : VerticalSplit          {"hospitals": pooled hospital columns + y, "insurer": ...}
    mixed : MixedSplit                hospitals by rows, the insurer by columns
    X_test : DataFrame                held-out patients, columns = ``mixed.pooled()``'s
    y_test : ndarray of float32       their labels (1 = MS)
    test_hospital : ndarray of int    which hospital each test patient comes from
    prevalence : dict name -> float   each hospital's target prevalence pi_h
    intercepts : dict name -> float   the solved b0_h
    """

    hospitals: dict
    insurer: object
    horizontal: HorizontalSplit
    vertical: VerticalSplit
    mixed: MixedSplit
    X_test: object
    y_test: np.ndarray
    test_hospital: np.ndarray
    prevalence: dict
    intercepts: dict
    seed: int
    feature_descriptions: dict = field(default_factory=lambda: dict(FEATURE_DESCRIPTIONS))

    @property
    def hospital_names(self) -> list:
        return list(self.hospitals)

    @property
    def X_test_hospitals(self):
        """The test set with the hospital columns only (for models trained on ``horizontal``)."""
        return self.X_test[list(HOSPITAL_COLUMNS)]


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _hospital_profile(h: int, n_hospitals: int) -> dict:
    t = h / (n_hospitals - 1) if n_hospitals > 1 else 0.0
    p0 = np.array([0.40, 0.30, 0.20, 0.10])
    p1 = np.array([0.15, 0.25, 0.35, 0.25])
    return {
        "t": t,
        "age_mean": 52.0 - 14.0 * t,
        "p_adem": 0.02 + 0.03 * t,
        "p_on": 0.03 + 0.04 * t,
        "region_p": (1 - t) * p0 + t * p1,
        "prevalence": 0.04 + 0.14 * t,
        "miss_lab": 0.10 + 0.35 * t,
        "miss_vitd": 0.25 + 0.35 * t,
        "size_weight": 1.0 + 0.5 * (n_hospitals - 1 - h) / max(n_hospitals - 1, 1),
    }


def _covariates(rng: np.random.Generator, n: int, prof: dict) -> dict:
    age = np.clip(np.rint(rng.normal(prof["age_mean"], 13.0, n)), 18, 80)
    female = (rng.random(n) < 0.52).astype(float)
    adem = (rng.random(n) < prof["p_adem"]).astype(float)
    on = (rng.random(n) < prof["p_on"]).astype(float)
    hl = (rng.random(n) < np.clip(0.10 + 0.006 * (age - 40), 0.02, 0.6)).astype(float)
    hg = (rng.random(n) < np.clip(0.06 + 0.004 * (age - 40), 0.02, 0.5)).astype(float)
    region = rng.choice(len(REGIONS), size=n, p=prof["region_p"])
    north = (region == 0).astype(float)
    vitd = np.clip(np.rint(rng.normal(27.0 - 4.0 * north, 8.0)), 5, 60)
    return {"age": age, "female": female, "adem": adem, "optic_neuritis": on,
            "hyperlipidemia": hl, "hyperglycemia": hg, "vitamin_d": vitd, "region": region,
            "north": north}


def _linear_predictor(c: dict) -> np.ndarray:
    k = COEFFICIENTS
    age = c["age"]
    return (k["female"] * c["female"]
            + k["age_20_40"] * ((age >= 20) & (age <= 40))
            + k["age_over_40_per_year"] * np.maximum(age - 40, 0)
            + k["adem"] * c["adem"] + k["optic_neuritis"] * c["optic_neuritis"]
            + k["hyperlipidemia"] * c["hyperlipidemia"] + k["hyperglycemia"] * c["hyperglycemia"]
            + k["vitamin_d_per_ng_ml_above_27"] * (c["vitamin_d"] - 27.0)
            + k["region_north"] * c["north"])


def _solve_intercept(eta: np.ndarray, prevalence: float) -> float:
    """b0 with mean(sigmoid(b0 + eta)) == prevalence (bisection; the mean is increasing in b0)."""
    lo, hi = -20.0, 20.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if _sigmoid(mid + eta).mean() < prevalence:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _draw(rng: np.random.Generator, n: int, prof: dict, b0: float | None):
    """Draw n patients of one hospital; returns (columns dict, y, insurer column, b0)."""
    c = _covariates(rng, n, prof)
    eta = _linear_predictor(c)
    if b0 is None:
        b0 = _solve_intercept(eta, prof["prevalence"])
    y = (rng.random(n) < _sigmoid(b0 + eta)).astype(float)
    visits = np.minimum(rng.poisson(3.0 + 0.04 * (c["age"] - 18) + 2.0 * y + 1.5 * c["adem"]), 40)
    reimb = np.clip(np.rint(rng.gamma(2.0, 2.5 + 3.0 * y)), 0, 50)
    for col, rate in (("hyperlipidemia", prof["miss_lab"]), ("hyperglycemia", prof["miss_lab"]),
                      ("vitamin_d", prof["miss_vitd"])):
        c[col] = np.where(rng.random(n) < rate, np.nan, c[col])
    c["n_visits"] = visits.astype(float)
    return c, y, reimb, b0


def _frame(c: dict):
    import pandas as pd

    data = {}
    for col in HOSPITAL_COLUMNS:
        if col == "region":
            data[col] = pd.Categorical.from_codes(c["region"].astype(np.int64),
                                                  categories=list(REGIONS))
        else:
            data[col] = c[col].astype(np.float32)
    return pd.DataFrame(data, columns=list(HOSPITAL_COLUMNS))


def _sizes(total: int, weights: np.ndarray) -> np.ndarray:
    raw = total * weights / weights.sum()
    sizes = np.floor(raw).astype(int)
    rest = total - sizes.sum()
    order = np.argsort(-(raw - sizes), kind="stable")
    sizes[order[:rest]] += 1
    return sizes


def make_ms_hospitals(n_hospitals: int = 3, n_patients: int = 3000, n_test: int = 1000,
                      seed: int = 0) -> MSHospitals:
    """Synthetic MS-diagnosis data for ``n_hospitals`` hospitals and one insurer.

    Parameters
    ----------
    n_hospitals : int >= 2
        Number of hospitals (named ``hospital_1``, ``hospital_2``, ...).
    n_patients : int
        Training patients in total, split across the hospitals (sizes in the
        module docstring); each hospital gets at least 20.
    n_test : int >= 1
        Held-out patients, from the same hospitals in the same proportions.
    seed : int
        Everything is reproducible from it.

    The generating model (coefficients, prevalence, missingness, the
    insurer's column) is documented in :mod:`ppboost.datasets.ms`.
    """
    import pandas as pd

    for name, v, lo in (("n_hospitals", n_hospitals, 2), ("n_patients", n_patients, 1),
                        ("n_test", n_test, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} == {v!r}, must be an int >= {lo}")
    if n_patients < 20 * n_hospitals:
        raise ValueError(f"n_patients == {n_patients}, must be >= {20 * n_hospitals} "
                         f"(20 per hospital for {n_hospitals} hospitals)")
    profiles = [_hospital_profile(h, n_hospitals) for h in range(n_hospitals)]
    weights = np.array([p["size_weight"] for p in profiles])
    n_train = _sizes(n_patients, weights)
    n_tst = _sizes(n_test, weights)

    hospitals, reimbs, test_parts = {}, [], []
    prevalence, intercepts = {}, {}
    for h, prof in enumerate(profiles):
        name = f"hospital_{h + 1}"
        # one independent stream per hospital, derived from `seed`
        hrng = np.random.default_rng([seed, h])
        c, y, reimb, b0 = _draw(hrng, int(n_train[h]), prof, None)
        hospitals[name] = (_frame(c), y.astype(np.float32))
        reimbs.append(reimb)
        prevalence[name] = prof["prevalence"]
        intercepts[name] = b0
        if n_tst[h]:
            ct, yt, rt, _ = _draw(hrng, int(n_tst[h]), prof, b0)
            ft = _frame(ct)
            ft[INSURER_COLUMN] = rt.astype(np.float32)
            test_parts.append((ft, yt, np.full(int(n_tst[h]), h)))

    insurer = pd.DataFrame({INSURER_COLUMN: np.concatenate(reimbs).astype(np.float32)})
    pooled_h = pd.concat([f for f, _ in hospitals.values()], ignore_index=True)
    y_all = np.concatenate([y for _, y in hospitals.values()])
    categories = {"region": list(REGIONS)}
    horizontal = HorizontalSplit(dict(hospitals), categories=categories)
    vertical = VerticalSplit({"hospitals": (pooled_h, y_all), "insurer": insurer},
                             categories=categories)
    mixed = MixedSplit(horizontal=dict(hospitals), vertical={"insurer": (insurer, None)},
                       categories=categories)
    X_test = pd.concat([f for f, _, _ in test_parts], ignore_index=True)
    y_test = np.concatenate([y for _, y, _ in test_parts]).astype(np.float32)
    test_h = np.concatenate([i for _, _, i in test_parts]).astype(np.int64)
    return MSHospitals(hospitals=hospitals, insurer=insurer, horizontal=horizontal,
                       vertical=vertical, mixed=mixed, X_test=X_test, y_test=y_test,
                       test_hospital=test_h, prevalence=prevalence, intercepts=intercepts,
                       seed=int(seed))
