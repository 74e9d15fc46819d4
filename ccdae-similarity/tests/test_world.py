import numpy as np

from ccdae_similarity import world


def test_levels_are_nested_and_length_is_complexity():
    rng = np.random.default_rng(0)
    for _ in range(20):
        g = world.random_graph(rng)
        for c in range(world.LEVELS):
            coarse, fine = world.describe(g, c), world.describe(g, c + 1)
            assert len(coarse) == c and len(fine) == c + 1
            assert fine[:c] == coarse  # level-c description is a prefix of level c+1


def test_similarity_level_closed_form():
    a = (0, 1, 2, 3, 1, 0)
    assert world.similarity_level(a, a) == world.LEVELS
    assert world.similarity_level(a, (1, 1, 2, 3, 1, 0)) == 0
    assert world.similarity_level(a, (0, 1, 2, 0, 0, 0)) == 3


def test_pairs_have_their_ground_truth_level():
    pairs = world.make_pairs(3, 4, 3, "image")
    for p in pairs:
        assert world.similarity_level(p.a.graph, p.b.graph) == p.level
    assert {p.level for p in pairs if p.kind == "random"} == set(range(world.LEVELS + 1))


def test_motivating_pairs_invert_pixel_distance():
    pairs = world.make_pairs(5, 0, 6, "image")
    dist = {"surface_near_concept_far": [], "surface_far_concept_same": []}
    for p in pairs:
        a = world.render(p.a.graph, p.a.nuisance, 32, 0.0)
        b = world.render(p.b.graph, p.b.nuisance, 32, 0.0)
        dist[p.kind].append(float(((a - b) ** 2).mean()))
    assert max(dist["surface_near_concept_far"]) < min(dist["surface_far_concept_same"])


def test_render_and_realise():
    rng = np.random.default_rng(1)
    g, n = world.random_graph(rng), world.random_nuisance(rng)
    img = world.render(g, n, 16)
    assert img.shape == (3, 16, 16) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    vocab = set(world.text_vocabulary())
    for _ in range(50):
        g, n = world.random_graph(rng), world.random_nuisance(rng)
        assert set(world.realise(g, n).split()) <= vocab


def test_triplets_order():
    for anchor, near, far in world.make_triplets(0, 30):
        assert (world.similarity_level(anchor.graph, near.graph)
                > world.similarity_level(anchor.graph, far.graph))
