import numpy as np
import pytest
from microdf import MicroSeries

from microplex_assets.publication.h5_export import write_policyengine_h5
from microplex_assets.validation.aggregates import (
    AGGREGATES,
    COLUMNS,
    format_aggregates_markdown,
    national_aggregates,
)
from microplex_resources.policyengine_runtime import policyengine_microsimulation
from tests.publication.households import tiny_bundle, weighted_people


def test_aggregates_of_the_tiny_file(tmp_path, pe_system):
    bundle = tiny_bundle()
    path = tmp_path / "policyengine_us_2024.h5"
    write_policyengine_h5(bundle, path, pe_system)
    table = national_aggregates(policyengine_microsimulation(path), 2024)
    assert list(table.columns) == COLUMNS
    assert table["quantity"].tolist() == [quantity for quantity, _, _ in AGGREGATES]
    rows = table.set_index("quantity")
    assert rows.loc["population", "weighted_total"] == pytest.approx(weighted_people(bundle))
    assert rows.loc["population", "weighted_total"] == pytest.approx(9_500.0)
    assert rows.loc["population", "nonzero_records"] == 9
    assert rows.loc["households", "weighted_total"] == pytest.approx(4_500.0)
    assert rows.loc["households", "entity"] == "household"
    # Wages: 85k + 30k at 1,000; 24k at 800; 60k + 18k at 1,200.
    assert rows.loc["employment_income", "weighted_total"] == pytest.approx(227.8e6)
    assert rows.loc["employment_income", "nonzero_records"] == 5
    assert rows.loc["snap", "entity"] == "spm_unit" and rows.loc["eitc", "entity"] == "tax_unit"
    assert rows.loc["eitc", "weighted_total"] > 0  # the single parent qualifies
    assert set(rows["unit"]) == {"people", "households", "USD"}
    assert np.isfinite(table["weighted_total"]).all()


class FakeSimulation:
    """Just enough of a Microsimulation: MicroSeries weighted by entity."""

    class _Variable:
        def __init__(self, entity):
            self.entity = type("Entity", (), {"key": entity})

    def __init__(self):
        entities = {"person": [2.0, 2.0, 3.0], "household": [2.0, 3.0], "tax_unit": [2.0, 3.0]}
        entities["spm_unit"] = entities["household"]
        self.weights = entities
        self.entity_of = {
            "person_id": "person", "household_id": "household", "income_tax": "tax_unit",
            "snap": "spm_unit", "ssi": "person", "eitc": "tax_unit",
            "employment_income": "person", "household_net_income": "household",
        }  # fmt: skip
        variables = {name: self._Variable(entity) for name, entity in self.entity_of.items()}
        self.tax_benefit_system = type("System", (), {"variables": variables})

    def calculate(self, variable, year):
        weights = self.weights[self.entity_of[variable]]
        values = {"person_id": [1, 2, 3], "household_id": [10, 20], "ssi": [0.0, 0.0, 1e3]}
        data = values.get(variable, [1e9] + [0.0] * (len(weights) - 1))
        return MicroSeries(np.array(data, dtype=float), weights=np.array(weights))


def test_weighted_sums_and_counts_without_policyengine():
    rows = national_aggregates(FakeSimulation(), 2024).set_index("quantity")
    assert rows.loc["population", "weighted_total"] == 7.0
    assert rows.loc["households", "weighted_total"] == 5.0
    assert rows.loc["ssi", "weighted_total"] == 3e3 and rows.loc["ssi", "nonzero_records"] == 1
    assert rows.loc["income_tax", "weighted_total"] == 2e9
    markdown = format_aggregates_markdown(rows.reset_index())
    assert "| income_tax | `income_tax` | tax_unit | $2.0bn | 1 |" in markdown
    assert "| population | `person_id` | person | 0.00m people | 3 |" in markdown
