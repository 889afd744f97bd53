"""`hub query` / `hub budgets` on the command line and HubClient.query -> polars, against a
real hub process."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from hub.auth.clients import ClientStore
from hub.cli import app
from hub.client import HubAPIError, HubClient
from hub.services import Hub
from tests.conftest import HubProcess
from tests.queries.conftest import AGREEMENT, POLICE, PURPOSE, RECIPIENT, load_demo

runner = CliRunner()


def test_cli_and_client_query_preview_and_budgets(hub: Hub, tmp_path: Path) -> None:
    load_demo(hub, tmp_path / "extracts")
    client, secret = ClientStore(hub.engine).create(organisation=RECIPIENT, role="analyst")
    assert secret is not None
    server = HubProcess(hub.settings, tmp_path / "hub.log")
    server.start()
    try:
        env = {
            "HUB_URL": server.url,
            "HUB_CLIENT_ID": client.client_id,
            "HUB_CLIENT_SECRET": secret,
            "COLUMNS": "200",
        }
        args = ["query", "--agreement", AGREEMENT, "--dataset", POLICE, "--purpose", PURPOSE]
        args += ["--group-by", "sex", "--filter", "sex=male,female", "--epsilon", "0.2"]
        preview = runner.invoke(app, env=env, args=[*args, "--preview"])
        assert preview.exit_code == 0, preview.output
        assert "half-width" in preview.output
        result = runner.invoke(app, env=env, args=args)
        assert result.exit_code == 0, result.output
        printed = " ".join(result.output.split())
        assert "female" in printed and "rows per person" in printed
        refused = runner.invoke(app, env=env, args=[*args[:-1], "0.9"])
        assert refused.exit_code == 1 and "per query" in refused.output
        too_small = runner.invoke(app, env=env, args=[*args[:-1], "0.0001"])
        assert too_small.exit_code == 1
        assert "epsilon: must be at least 0.001" in " ".join(too_small.output.split())
        budgets = runner.invoke(app, env=env, args=["budgets"])
        assert budgets.exit_code == 0 and AGREEMENT in budgets.output
        # hostile or careless input is a one-line refusal, not a crash: text that Rich would
        # read as markup, spaces after the commas of a list
        base = args[:7]  # query --agreement A --dataset D --purpose P
        for bad in (["--filter", "[/]"], ["--filter", "sex=[/]"], ["--group-by", "[bold]x"]):
            marked = runner.invoke(
                app, env=env, args=[*base, *bad, "--epsilon", "0.2", "--preview"]
            )
            assert marked.exit_code in (1, 2), marked.output
            assert marked.exception is None or isinstance(marked.exception, SystemExit)
            assert "Traceback" not in marked.output
            if "[/]" in bad[1]:
                assert "[/]" in marked.output, marked.output  # shown as given, not as markup
        spaced = [*base, "--group-by", "sex, age_band", "--filter", "sex=male, female"]
        spaced_preview = runner.invoke(
            app, env=env, args=[*spaced, "--epsilon", "0.2", "--preview"]
        )
        assert spaced_preview.exit_code == 0, spaced_preview.output
        with HubClient(server.url, client_id=client.client_id, client_secret=secret) as hub_client:
            frame = hub_client.query(
                purpose=PURPOSE,
                agreement_id=AGREEMENT,
                dataset=POLICE,
                measure="count_records",
                group_by=["age_band"],
                epsilon=0.2,
            )
            assert isinstance(frame, pl.DataFrame)
            assert frame.height == 5 and {"age_band", "value", "lower", "upper"} <= set(
                frame.columns
            )
            assert hub_client.last_release is not None
            with pytest.raises(HubAPIError, match="NaN or infinite"):
                hub_client.preview(
                    agreement_id=AGREEMENT, dataset=POLICE, measure="count_records",
                    epsilon=float("nan"),
                )  # fmt: skip
            left = {b["agreement_id"]: b for b in hub_client.budgets()}[AGREEMENT]
            # two releases at 0.2, and the rows-per-person histograms of their two
            # populations (sex in {male, female}; all records), 0.02 x the 0.5 cap each
            assert abs(left["epsilon_spent"] - (0.4 + 2 * 0.01)) < 1e-9
    finally:
        server.stop()
