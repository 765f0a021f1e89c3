"""`python -m plugins.yibao.simulator`: the same as `hisbridge simulate yibao`."""

from plugins.yibao.simulator.command import simulate_yibao

simulate_yibao(prog_name="python -m plugins.yibao.simulator")
