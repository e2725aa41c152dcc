import numpy as np
import pytest

from analysis import synthetic
from dstbench.analysis.jaccard import end_mask_matrix, first_update_matrix, reference_jaccard
from dstbench.analysis.results import load_results
from dstbench.analysis.structure import end_mask_study, first_update_study, over_time_study


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("structure")
    synthetic.structure_experiment(root)
    synthetic.over_time_experiment(root)
    synthetic.write_tables(root)
    return root


def test_first_update_uses_one_run_per_seed_and_random_for_the_reference(folder):
    results = load_results(folder)
    study = first_update_study(results.done("structure"), results.run_dir)
    assert list(study.panels) == [()] and study.notes == []
    matrices = study.panels[()]
    assert list(matrices) == [0.5, 0.25]
    m = matrices[0.5]
    assert m.labels == ("magnitude", "set", "reciprocal_sensitivity", "snip")
    assert m.count.max() == 3  # three seeds, not twelve runs
    assert np.allclose(np.diag(m.mean), 1.0)
    assert m.value("magnitude", "set") > 0.9 > m.value("snip", "reciprocal_sensitivity")
    probes = [synthetic.probe(seed, 8, synthetic.init_mask(seed, 0.2), synthetic.PROBE_CRITERIA, (0.5,))
              for seed in (0, 1, 2)]
    expected = first_update_matrix([{c: p[(c, 0.5)] for c, _ in p} for p in probes], list(m.labels))
    assert np.allclose(m.mean, expected.mean) and np.allclose(m.std, expected.std, equal_nan=True)
    assert m.reference == pytest.approx(reference_jaccard([p[("random", 0.5)] for p in probes]))
    assert m.reference_name == "J_r"


def test_first_update_notes_a_missing_probe_step(folder):
    results = load_results(folder)
    study = first_update_study(results.done("structure"), results.run_dir, step=999)
    first_per_seed = results.done("structure").sort_values(["seed", "run_id"]).drop_duplicates("seed")
    assert study.panels == {} and study.notes == [
        "all runs: 3 runs lack a probe file at step 999 (record with probe_steps and probe_criteria), and no other "
        "run of their seed has one: " + ", ".join(first_per_seed["run_id"])]


def test_first_update_takes_the_probing_run_of_each_seed(tmp_path):
    # runs that end-mask studies share carry no probes; the one probing run per seed is found among them
    plain = [synthetic.write_run(tmp_path, synthetic.config(density=0.2, prune=p, seed=s))
             for p in ("magnitude", "snip") for s in (0, 1)]
    probing = [synthetic.write_run(tmp_path, synthetic.config(density=0.2, seed=s, probe_steps=(8,),
                                                              probe_criteria=synthetic.PROBE_CRITERIA,
                                                              probe_fractions=(0.5,)), probe_steps=(8,))
               for s in (0, 1)]
    synthetic.write_sweep(tmp_path, "mixed", [(r, "grid") for r in plain + probing])
    results = load_results(tmp_path)
    study = first_update_study(results.done("mixed"), results.run_dir)
    assert study.notes == [] and study.panels[()][0.5].count.max() == 2


def test_end_masks_share_the_initial_mask_per_seed(folder):
    results = load_results(folder)
    study = end_mask_study(results.done("structure"), results.run_dir)
    result = study.panels[()]
    m = result.matrix
    assert m.labels == ("magnitude", "set", "reciprocal_sensitivity", "snip", "init")
    assert m.value("magnitude", "set") == 1.0  # the synthetic magnitude and SET runs end in the same mask
    samples = []
    for seed in (0, 1, 2):
        sample = {"init": synthetic.init_mask(seed, 0.2)}
        for c in m.labels[:-1]:
            sample[c] = synthetic.final_mask(synthetic.config(density=0.2, prune=c, grow="gradient", seed=seed))
        samples.append(sample)
    expected = end_mask_matrix(samples, list(m.labels))
    assert np.allclose(m.mean, expected.mean) and np.allclose(m.std, expected.std)
    assert m.reference == pytest.approx(reference_jaccard([s["init"] for s in samples]))
    assert result.retained_by_all.shape == (3,) and np.all((0 < result.retained_by_all) & (result.retained_by_all < 1))
    assert np.all((0 < result.removed_by_all) & (result.removed_by_all < 1))


def test_end_masks_note_runs_without_mask_files(tmp_path):
    run_id = synthetic.write_run(tmp_path, synthetic.config(density=0.2, prune="snip"))
    synthetic.write_sweep(tmp_path, "s", [(run_id, "grid")])
    synthetic.write_tables(tmp_path)
    results = load_results(tmp_path)
    study = end_mask_study(results.done("s"), results.run_dir)
    assert study.panels == {} and study.notes == [
        f"all runs: 1 run lacks masks/init.npz or masks/final.npz (training records them when the spec asks for "
        f"masks): {run_id}"]


def test_over_time_rows_are_run_criteria(folder):
    results = load_results(folder)
    study = over_time_study(results.done("over_time"), results.run_dir)
    result = study.panels[()]
    assert result.rows == ("magnitude", "snip") and result.columns == ("magnitude", "snip")
    assert result.steps == (10, 20, 30)
    assert np.allclose(result.mean[0, 0], 1.0) and np.all(result.count == 2)
    assert np.all(result.mean[0, 1] < 1.0)


def test_end_masks_of_a_single_criterion_are_not_a_matrix(tmp_path):
    run_ids = [synthetic.write_run(tmp_path, synthetic.config(density=0.2, seed=s), masks=True) for s in (0, 1)]
    synthetic.write_sweep(tmp_path, "one", [(r, "grid") for r in run_ids])
    results = load_results(tmp_path)
    study = end_mask_study(results.done("one"), results.run_dir)
    assert study.panels == {} and study.notes == ["all runs: only magnitude has end masks; nothing to compare"]


def test_settings_with_end_masks_of_a_single_criterion_share_one_note(tmp_path):
    # as the study's probe runs: magnitude only, at two densities and for two models (four settings)
    run_ids = [synthetic.write_run(tmp_path, synthetic.config(model=m, density=d, seed=0), masks=True)
               for m in ("small_mlp", "small_cnn") for d in (0.2, 1.0)]
    synthetic.write_sweep(tmp_path, "probes", [(r, "grid") for r in run_ids])
    results = load_results(tmp_path)
    study = end_mask_study(results.done("probes"), results.run_dir)
    assert study.panels == {} and len(study.notes) == 1
    assert study.notes[0].startswith("only magnitude has end masks in 4 settings, so they have nothing to compare: ")
    assert study.notes[0].count("model=") == 4
