"""Solo runs train bit-identically to the trainer before the one-trainer change (issue #18): the same metrics rows,
update history, masks, probes and final weights. The values were recorded by `pinned_runs.py` on the trainer of
commit 0b7bb13 (torch 2.13.0+cpu, cpu capability AVX512); CPU kernels differ between torch versions and instruction sets, so
elsewhere the test is skipped, not failed.
"""

import pytest
import torch

from dstbench.train.loop import run
from dstbench.train.recipes import resolve_config

from .pinned_runs import PINNED, fingerprint, pinned_config

TORCH, CAPABILITY = "2.13.0+cpu", "AVX512"

RECORDED = {
    'magnitude-random': {'run_id': 'c4974b553a3b604e', 'losses': [(2.295536985071102, 2.2716704191984953, 2.272467267071759), (2.2690973517054496, 2.266471354166667, 2.267356363932292)], 'accuracies': [(0.12171837708830549, 0.36666666666666664, 0.37777777777777777), (0.39936356404136836, 0.45555555555555555, 0.42592592592592593)], 'rows': 'd61cb33e95cdabb9', 'history': '54248cc5e1fd7ffe', 'masks': {'final': '3e123e355dca4eda', 'init': '3845249c83bbe185'}, 'probes': 'e3b0c44298fc1c14', 'weights': 'd4a9b2c0b8b46386'},
    'set-gradient-adam-smoothing': {'run_id': '15359a6c6dc0779e', 'losses': [(1.2341909719632558, 0.7813961452907986, 0.8234137075918692), (0.6928512342600189, 0.6782963505497686, 0.7419026127567998)], 'accuracies': [(0.7239459029435164, 0.9222222222222223, 0.9148148148148149), (0.9618138424821002, 0.9666666666666667, 0.9074074074074074)], 'rows': 'b0b7408f5a00da40', 'history': '47de6c7324241934', 'masks': {'final': '29b4400eba776b9b', 'init': 'bfad43d710484156'}, 'probes': 'e3b0c44298fc1c14', 'weights': '5c06ffa01588b6f4'},
    'snip-binary-update-batch': {'run_id': '1649d4fa100c6dfe', 'losses': [(0.5352638282967572, 0.27591460732852713, 0.19258749762246774), (0.21012134647848618, 0.2524109784294577, 0.16596634443416153)], 'accuracies': [(0.7814070351758794, 0.8823529411764706, 0.9883720930232558), (0.9346733668341709, 0.8823529411764706, 0.9883720930232558)], 'rows': '24c635059fc297ca', 'history': 'a07db3234c5bbd11', 'masks': {'final': '4433c5f53852a860', 'init': 'da5f50c93fbaa944'}, 'probes': 'e3b0c44298fc1c14', 'weights': 'a71fbd64adf4c95b'},
    'cnn-probes-snapshots': {'run_id': '6ddaa198633fa08a', 'losses': [(2.3045490176884447, 2.2921981246383103, 2.292964228877315), (2.2912529677555686, 2.289554172092014, 2.2901658799913194)], 'accuracies': [(0.09705648369132856, 0.1037037037037037, 0.1), (0.12649164677804295, 0.13703703703703704, 0.13703703703703704)], 'rows': '03634183fb6c6445', 'history': '628e834e1395d16d', 'masks': {'final': '2f43459089c00ebb', 'init': '0082a2771bec4a0d', 'step_0000011': '3978a4704c62cdad', 'step_0000041': 'e81008b6a0e72348'}, 'probes': '106c399bbaa9e80b', 'weights': 'afc165f8273063b4'},
    'mest-momentum-adamw-fresh': {'run_id': 'f500025ca6565284', 'losses': [(1.1258890642091786, 0.17596104939778645, 0.31210861206054685), (0.1780652491555104, 0.1521542301884404, 0.23873409695095485)], 'accuracies': [(0.6738265712012729, 0.9333333333333333, 0.9222222222222223), (0.9482895783611774, 0.9444444444444444, 0.9296296296296296)], 'rows': '8834e320490381ca', 'history': '54248cc5e1fd7ffe', 'masks': {'final': 'be1d0c4da4b3be21', 'init': '0628191df0ca6c75'}, 'probes': 'e3b0c44298fc1c14', 'weights': 'd0799261db6131bd'},
    'dropout-sensitivity': {'run_id': 'aa370fa6d00b279c', 'losses': [(2.2705996808497413, 2.16998132776331, 2.1686290599681715), (2.153887449035402, 2.136004412615741, 2.136297833478009)], 'accuracies': [(0.17899761336515513, 0.28888888888888886, 0.3), (0.284805091487669, 0.2740740740740741, 0.2962962962962963)], 'rows': 'd66d7a4497b13458', 'history': 'dfa7f619997c088f', 'masks': {'final': 'd70eaa6eb4dc78a1', 'init': '298b839dceeb75ee'}, 'probes': 'e3b0c44298fc1c14', 'weights': '374ac06860d0dd8e'},
    'amp-global': {'run_id': '6f50b17acec602e9', 'losses': [(2.2995203423329356, 2.278378634982639, 2.279281955295139), (2.2761329523418854, 2.2741059479890047, 2.275127495659722)], 'accuracies': [(0.11853619729514718, 0.26296296296296295, 0.24814814814814815), (0.2012728719172633, 0.2, 0.1962962962962963)], 'rows': '2de0ee15b55afb62', 'history': '28e84391cff65d2d', 'masks': {'final': '94eebcf1acae79c4', 'init': '2317605d9d9e5767'}, 'probes': 'e3b0c44298fc1c14', 'weights': '0613edea3273079d'},
}

pytestmark = pytest.mark.skipif(
    (torch.__version__, torch.backends.cpu.get_cpu_capability()) != (TORCH, CAPABILITY),
    reason=f"values pinned on torch {TORCH} with {CAPABILITY} kernels",
)


def test_every_pinned_run_is_recorded():
    assert RECORDED.keys() == PINNED.keys()


@pytest.mark.parametrize("name", list(PINNED))
def test_a_solo_run_trains_as_it_did_before(name, tmp_path):
    config = pinned_config(name)
    assert resolve_config(config).run_id() == RECORDED[name]["run_id"]  # run ids are unchanged too
    run(config, tmp_path)
    assert fingerprint(tmp_path) == RECORDED[name]
