from pathlib import Path

import pytest

from engine.attribution.loader import load_rule_file
from engine.errors import ConfigError
from engine.message import Party


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fault_rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_rules_load_as_fault_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
rules:
  - id: site.lis.down
    party: device
    match: {adapter: lis_http, http_status: [502, 503], field.errcode: {regex: "^E"}}
    reason: "the LIS gateway is down ({http_status})"
    remedy: call the lab
    priority: 200
  - id: site.default_priority
    party: third_party
    match: {message: "超时"}
    reason: "x"
""",
    )
    first, second = load_rule_file(path)
    assert (first.id, first.party, first.priority, first.remedy) == (
        "site.lis.down",
        Party.DEVICE,
        200,
        "call the lab",
    )
    assert first.match["http_status"] == [502, 503]
    assert second.priority == 500


def test_every_problem_names_file_and_rule_index(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
rules:
  - id: ok.rule
    party: his
    match: {stage: validate}
    reason: fine
  - id: bad.party
    party: hospital
    match: {stage: send}
    reason: x
  - id: bad.match
    party: engine
    match: {stag: send, http_status: "5x", message: "([", field.code: {glob: "*"}}
    reason: "broken {template"
  - party: engine
    match: {stage: send}
    reason: x
  - id: ok.rule
    party: his
    match: {stage: send}
    reason: x
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_rule_file(path)
    problems = caught.value.problems
    assert all(problem.startswith(f"{path}: rules[") for problem in problems)
    text = "\n".join(problems)
    assert "rules[1] (bad.party): party:" in text
    assert "rules[2] (bad.match): match:" in text and "unknown match key 'stag'" in text
    assert "rules[2] (bad.match): reason:" in text
    assert "rules[3]: id: Field required" in text
    assert "rules[4] (ok.rule): duplicate id, first used by rules[0]" in text
    assert "rules[0]" not in text.replace("first used by rules[0]", "")


@pytest.mark.parametrize(
    ("match", "complaint"),
    [
        ('{http_status: "5x"}', "neither a status code"),
        ('{message: "(["}', "invalid regex"),
        ('{field.code: {glob: "*"}}', "must be {regex: ...}"),
        ("{}", "at least 1 item"),
    ],
)
def test_match_conditions_are_validated(tmp_path: Path, match: str, complaint: str) -> None:
    path = write(tmp_path, f"rules:\n  - {{id: a.b, party: his, reason: x, match: {match}}}\n")
    with pytest.raises(ConfigError, match="rules\\[0\\] \\(a.b\\)") as caught:
        load_rule_file(path)
    assert complaint in str(caught.value)


def test_file_level_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_rule_file(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_rule_file(write(tmp_path, "rules: [\n"))
    with pytest.raises(ConfigError, match="expected a mapping with a `rules:` list"):
        load_rule_file(write(tmp_path, "- id: a.b\n"))


def test_conf_rules_are_optional(tmp_path: Path) -> None:
    from engine.attribution.loader import load_conf_rules

    assert load_conf_rules(tmp_path) == []
    write(tmp_path, "rules:\n  - {id: site.x, party: his, reason: r, match: {stage: send}}\n")
    assert [rule.id for rule in load_conf_rules(tmp_path)] == ["site.x"]
