import numpy as np
import pytest
import torch

from facetalk.head import (
    BROW,
    JAW,
    NPHMHead,
    ProceduralHead,
    build_head,
    mouth_opening,
    render_mesh,
)


@pytest.fixture(scope="module")
def head():
    return ProceduralHead(id_dim=4, exp_dim=8, rings=12)


def test_neutral_code_gives_template(head):
    verts = head(torch.zeros(1, 3, 8), torch.zeros(1, 4))
    for f in range(3):
        torch.testing.assert_close(verts[0, f], head.template_vertices)


def test_identity_code_changes_shape_not_topology(head):
    z_id = torch.randn(1, 4, generator=torch.Generator().manual_seed(0))
    neutral = head.neutral(z_id)[0]
    assert neutral.shape == head.template_vertices.shape
    assert (neutral - head.template_vertices).abs().max() > 1e-3


def test_jaw_code_opens_mouth_monotonically(head):
    jaw = torch.linspace(0, 2, 9)
    z = torch.zeros(1, 9, 8)
    z[0, :, JAW] = jaw
    opening = mouth_opening(head(z, torch.zeros(1, 4))[0], head.mouth_pair)
    assert torch.all(opening.diff() > 0), opening
    brow = torch.zeros(1, 1, 8)
    brow[0, 0, BROW] = 1.0  # brows do not move the lips
    torch.testing.assert_close(mouth_opening(head(brow, torch.zeros(1, 4))[0], head.mouth_pair),
                               opening[:1])


def test_decoding_is_linear_in_codes(head):
    g = torch.Generator().manual_seed(1)
    a, b, z_id = torch.randn(1, 2, 8, generator=g), torch.randn(1, 2, 8, generator=g), torch.zeros(1, 4)
    base = head(torch.zeros_like(a), z_id)
    torch.testing.assert_close(head(a + b, z_id) - base,
                               (head(a, z_id) - base) + (head(b, z_id) - base))


def test_regions_are_sane(head):
    ys = head.template_vertices[:, 1]
    assert len(head.lip_indices) >= 4 and len(head.upper_indices) > 10
    assert ys[head.lip_indices].max() < ys[head.upper_indices].min()


def test_too_small_expression_space_rejected():
    with pytest.raises(ValueError, match="exp_dim"):
        ProceduralHead(4, 3)


def test_render_shape(head):
    img = render_mesh(head.template_vertices.numpy(), head.faces.numpy(), size=64,
                      colors=head.vertex_colors.numpy())
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8 and img.std() > 5


class _ToyDeformer(torch.nn.Module):
    def forward(self, points: torch.Tensor, z_id: torch.Tensor, z_exp: torch.Tensor):
        return points * z_exp[0] + z_id[0]


def test_nphm_interface_with_scripted_deformer(tmp_path):
    torch.jit.script(_ToyDeformer()).save(str(tmp_path / "deformer.pt"))
    verts = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.savez(tmp_path / "neutral.npz", vertices=verts, faces=np.array([[0, 1, 2]]),
             lip_indices=np.array([0, 1]), upper_indices=np.array([3, 4]),
             mouth_pair=np.array([0, 1]))
    head = build_head("nphm", id_dim=2, exp_dim=3, path=str(tmp_path))
    z_exp = torch.zeros(1, 2, 3)
    z_exp[0, 1, 0] = 1.0
    out = head(z_exp, torch.zeros(1, 2))
    torch.testing.assert_close(out[0, 0], torch.from_numpy(verts))
    torch.testing.assert_close(out[0, 1], 2 * torch.from_numpy(verts))


def test_nphm_missing_files_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="deformer.pt"):
        NPHMHead(tmp_path, 2, 3)
