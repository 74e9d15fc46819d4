import numpy as np
import pytest

from clap_vad.data import SyntheticSpec, make_synthetic
from clap_vad.partition import event_split, partition, random_split, scene_split


@pytest.fixture(scope="module")
def videos():
    return make_synthetic(SyntheticSpec(num_scenes=3, num_events=2, train_videos_per_scene=7,
                                        feature_dim=8, min_snippets=6, max_snippets=8), 0)[0]


def _exactly_once(parts, n):
    flat = np.concatenate(parts)
    assert len(flat) == n and set(flat.tolist()) == set(range(n))


@pytest.mark.parametrize("split", ["random", "event", "scene"])
def test_every_video_assigned_once(videos, split):
    _exactly_once(partition(videos, split, 4, seed=0), len(videos))


def test_random_split_sizes():
    parts = random_split(10, 3, seed=1)
    assert sorted(len(p) for p in parts) == [3, 3, 4]
    _exactly_once(parts, 10)


def test_scene_split_disjoint_scenes(videos):
    parts = scene_split(videos.scenes)
    scene_sets = [set(videos.scenes[p].tolist()) for p in parts]
    assert all(len(s) == 1 for s in scene_sets)
    assert len(set().union(*scene_sets)) == len(parts) == 3


def test_event_split_as_official():
    events = np.array([0, 1, 0, 2, 0, 1, 0, 0, 2])
    parts = event_split(events)
    # participant k: every video of class k+1, plus the k-th contiguous chunk of normals
    normals = np.flatnonzero(events == 0)  # [0, 2, 4, 6, 7]: chunk 2, last takes the rest
    assert parts[0].tolist() == sorted([1, 5, *normals[:2]])
    assert parts[1].tolist() == sorted([3, 8, *normals[2:]])


def test_participant_without_data_is_an_error(videos):
    with pytest.raises(ValueError, match="have no videos"):
        partition(videos, "random", len(videos) + 1, seed=0)


def test_scene_split_needs_scene_ids(videos):
    with pytest.raises(ValueError, match="scenes.csv"):
        scene_split(np.full(len(videos), -1))
