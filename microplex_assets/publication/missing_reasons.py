"""Why each eCPS input the default build cannot provide is missing, grouped by what could
supply it (the manifest's coverage table shows the reason beside the variable).

The default scaffold is taxcalc's CPS file (71 columns: amounts, ages, counts, codes), the
tax donor is synthesized from SOI tables, and the assets come from published SCF tables.
What none of them carries is missing rather than filled with a constant: a default written
on every record would be counted as data it is not. ``coverage.LEFT_OUT`` holds the ones
left out for a reason of their own; this module the ones waiting for a source.
"""

from __future__ import annotations

# reason -> variables. Keep each variable in one group.
NO_SOURCE_GROUPS: dict[str, tuple[str, ...]] = {
    "the CPS ASEC asks it but taxcalc's CPS file drops it; the ASEC loader "
    "(sources/cps_asec.py) is not the default scaffold and maps few of these": (
        "cps_race",
        "is_hispanic",
        "hours_worked_last_week",
        "weekly_hours_worked_before_lsr",
        "weeks_unemployed",
        "hourly_wage",
        "is_paid_hourly",
        "is_union_member_or_covered",
        "is_military",
        "has_never_worked",
        "detailed_occupation_recode",
        "is_computer_scientist",
        "is_executive_administrative_professional",
        "is_farmer_fisher",
        "treasury_tipped_occupation_code",
        "tip_income",
        "child_support_received",
        "child_support_expense",
        "disability_benefits",
        "workers_compensation",
        "survivor_benefits",
        "strike_benefits",
        "educational_assistance",
        "financial_assistance",
        "miscellaneous_income",
        "is_unmarried_partner_of_household_head",
        "spm_unit_energy_subsidy",
        "previous_year_income_available",
        "self_employment_income_last_year",
    ),
    "health coverage and premiums at interview: the CPS ASEC reports them, taxcalc's CPS "
    "file only Medicaid and Medicare values (used for receipt); no configured survey file "
    "maps them": (
        "has_esi",
        "has_marketplace_health_coverage_at_interview",
        "has_non_marketplace_direct_purchase_health_coverage_at_interview",
        "has_other_means_tested_health_coverage_at_interview",
        "has_tricare_health_coverage_at_interview",
        "has_va_health_coverage_at_interview",
        "has_champva_health_coverage_at_interview",
        "has_indian_health_service_coverage_at_interview",
        "employer_sponsored_insurance_premiums",
        "health_insurance_premiums_without_medicare_part_b",
        "other_health_insurance_premiums",
        "over_the_counter_health_expenses",
    ),
    "immigration: no survey in the build asks legal status; the eCPS imputes it from "
    "published undocumented-population estimates, none carried here": (
        "immigration_status_str",
        "ssn_card_type",
    ),
    "IRS PUF detail: neither taxcalc's CPS file nor the SOI-synthesized donor has the "
    "column (a real PUF via puf_path could supply some)": (
        "alimony_expense",
        "casualty_loss",
        "educator_expense",
        "health_savings_account_ald",
        "investment_interest_expense",
        "investment_income_elected_form_4952",
        "long_term_capital_gains_on_collectibles",
        "unrecaptured_section_1250_gain",
        "salt_refund_income",
        "farm_rent_income",
        "farm_operations_income",
        "w2_wages_from_qualified_business",
        "unadjusted_basis_qualified_property",
        "qualified_reit_and_ptp_income",
        "qualified_bdc_income",
        "sstb_w2_wages_from_qualified_business",
        "sstb_unadjusted_basis_qualified_property",
    ),
    "QBI detail not drawn: the eCPS draws these from policyengine-us-data's stated "
    "assumptions (qbi_assumptions.yaml, carried); the build draws the self-employment, "
    "rental, partnership/S-corp and estate flags and business_is_sstb (entities/qbi.py), not "
    "the flags of incomes it does not carry (farm operations, farm rent: a flag on no "
    "income changes nothing) nor the eCPS's SSTB split of self-employment income "
    "(business_is_sstb already makes an SSTB person's QBI SSTB in policyengine-us 2.68; "
    "the split would take the income out of self_employment_income, which 25 of 2.68's "
    "program income lists and the SOI business-income targets read alone)": (
        "sstb_self_employment_income_before_lsr",
        "sstb_self_employment_income_would_be_qualified",
        "farm_operations_income_would_be_qualified",
        "farm_rent_income_would_be_qualified",
    ),
    "retirement detail: the eCPS splits the ASEC's contribution total (RETCB_VAL) with "
    "imputation_parameters.yaml shares (IRS SOI, BEA, Vanguard) and its distributions by "
    "the ASEC's account-type codes; taxcalc's CPS file has neither: pencon_p/s are zero, "
    "e03150 is deductible IRA contributions (traditional only, no Roth part to split off), "
    "e01500/e01700 pensions have no account type, e01400 is taxable IRA distributions "
    "only, and the table's taxable shares of 401(k)/403(b)/IRA/SEP distributions are 1.0": (
        "keogh_distributions",
        "taxable_401k_distributions",
        "tax_exempt_401k_distributions",
        "taxable_403b_distributions",
        "tax_exempt_403b_distributions",
        "taxable_sep_distributions",
        "tax_exempt_sep_distributions",
        "tax_exempt_ira_distributions",
        "roth_ira_contributions_desired",
    ),
    "education credits: no source in the build records college enrolment or tuition": (
        "american_opportunity_credit_claimed_prior_years",
        "attends_eligible_educational_institution_for_american_opportunity_credit",
        "has_american_opportunity_credit_1098_t_or_exception",
        "has_american_opportunity_credit_institution_ein",
        "has_completed_first_four_years_of_postsecondary_education",
        "is_enrolled_at_least_half_time_for_american_opportunity_credit",
        "is_pursuing_credential_for_american_opportunity_credit",
        "qualified_tuition_expenses",
    ),
    "household balance sheet detail: the carried SCF 2022 tables and top-tail records give "
    "net worth and bank, stock and bond assets, not loans, vehicles or mortgage terms": (
        "auto_loan_balance",
        "auto_loan_interest",
        "household_vehicles_owned",
        "household_vehicles_value",
        "first_home_mortgage_balance",
        "first_home_mortgage_origination_year",
        "second_home_mortgage_balance",
        "second_home_mortgage_origination_year",
    ),
    "sub-county geography: block and tract need Census block assignment files, not carried": (
        "block_geoid",
        "tract_geoid",
    ),
    "no survey or published table in the build gives it": (
        "is_pregnant",
        "has_felony_drug_conviction",
        "selected_marketplace_plan_benchmark_ratio",
    ),
}
NO_SOURCE: dict[str, str] = {
    variable: reason for reason, names in NO_SOURCE_GROUPS.items() for variable in names
}
