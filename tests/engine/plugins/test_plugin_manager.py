from __future__ import annotations

import types
from pathlib import Path
from typing import Callable

import pytest
import structlog

from engine.catalogue import Catalogue
from engine.errors import PluginError
from engine.plugin_manager import BUILTIN_PLUGINS, create_plugin_manager

MakePlugin = Callable[..., types.ModuleType]
InstallDistribution = Callable[..., Path]


def test_builtins_are_registered_under_their_module_names() -> None:
    pm = create_plugin_manager(load_entry_points=False)
    assert {name for name, plugin in pm.list_name_plugin() if plugin} == set(BUILTIN_PLUGINS)


def test_misspelled_hook_fails_at_start_up_naming_the_plugin(make_plugin: MakePlugin) -> None:
    typo = make_plugin("acme_typo", hisbridge_register_adapter=lambda: [])

    with pytest.raises(PluginError) as raised:
        create_plugin_manager(load_entry_points=False, extra_plugins=[typo])

    assert "acme_typo" in str(raised.value)
    assert "hisbridge_register_adapter" in str(raised.value)


def test_hook_with_an_argument_the_spec_lacks_is_rejected_naming_the_plugin(
    make_plugin: MakePlugin,
) -> None:
    wrong = make_plugin("acme_wrong_args", hisbridge_startup=lambda engine, extra: None)

    with pytest.raises(PluginError, match="acme_wrong_args"):
        create_plugin_manager(load_entry_points=False, extra_plugins=[wrong])


def test_disabled_builtin_contributes_nothing() -> None:
    pm = create_plugin_manager(load_entry_points=False, disabled=["engine.processors_builtin"])

    assert pm.get_plugin("engine.processors_builtin") is None
    assert "require_fields" not in Catalogue.build(pm).processors


def test_disabled_entry_point_plugin_is_never_imported(
    install_distribution: InstallDistribution,
) -> None:
    install_distribution(
        distribution="acme-broken",
        version="0.1",
        module="acme_broken_plugin",
        source="raise RuntimeError('importing me is a bug')\n",
        entry_point="acme_broken",
    )

    pm = create_plugin_manager(disabled=["acme_broken"])

    assert pm.is_blocked("acme_broken")


def test_entry_point_that_fails_to_import_is_named(
    install_distribution: InstallDistribution,
) -> None:
    install_distribution(
        distribution="acme-broken",
        version="0.1",
        module="acme_broken_plugin",
        source="import acme_module_that_does_not_exist\n",
        entry_point="acme_broken",
    )

    with pytest.raises(PluginError) as raised:
        create_plugin_manager()

    message = str(raised.value)
    assert "acme_broken" in message and "acme-broken" in message
    assert "acme_module_that_does_not_exist" in message


def test_each_call_builds_an_independent_manager(make_plugin: MakePlugin) -> None:
    extra = make_plugin("acme_once", hisbridge_register_adapters=lambda: [])
    with_extra = create_plugin_manager(load_entry_points=False, extra_plugins=[extra])
    without = create_plugin_manager(load_entry_points=False)

    assert with_extra.has_plugin("acme_once")
    assert not without.has_plugin("acme_once")


def test_disabling_a_plugin_that_is_not_installed_is_reported() -> None:
    with structlog.testing.capture_logs() as logs:
        create_plugin_manager(disabled=["acme_not_installed", "engine.processors_builtin"])

    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert warnings == [
        {
            "event": "disabled plugins are not installed",
            "plugins": ["acme_not_installed"],
            "log_level": "warning",
        }
    ]
