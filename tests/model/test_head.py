"""The SVFR head computed in label chunks equals the unchunked head; GMC is permutation-equivariant."""

from __future__ import annotations

import copy

import pytest
import torch

from sigrl.model import SigRL


def _with_chunk(model: SigRL, chunk: int | None) -> SigRL:
    clone = SigRL(model.config.replace(head={"label_chunk": chunk}), model.clip, model.arch)
    clone.load_state_dict(model.state_dict())
    return clone.eval()


@pytest.mark.parametrize("n_labels", [1, 7, 81, 1006])
def test_chunked_head_equals_unchunked(tiny_model, tiny_images, n_labels):
    torch.manual_seed(n_labels)
    h = torch.randn(n_labels, tiny_model.dim)
    with torch.no_grad():
        side = tiny_model.label_side(h)
        images = tiny_model.normalize_uint8(tiny_images)
        full = _with_chunk(tiny_model, None)(images, side)
        for chunk in (1, 5, 16):
            chunked = _with_chunk(tiny_model, chunk)(images, side)
            assert (chunked - full).abs().max().item() <= 1e-5, f"chunk={chunk}"
    assert full.shape == (3, n_labels)
    assert torch.isfinite(full).all()


def test_head_does_not_couple_images_of_a_batch(tiny_model, tiny_images):
    with torch.no_grad():
        side = tiny_model.label_side(torch.randn(9, tiny_model.dim))
        images = tiny_model.normalize_uint8(tiny_images)
        batch = tiny_model(images, side)
        single = torch.cat([tiny_model(images[i : i + 1], side) for i in range(3)])
    assert (batch - single).abs().max().item() <= 1e-5


def _mean_pairwise_cosine(x: torch.Tensor) -> float:
    unit = torch.nn.functional.normalize(x, dim=-1)
    cos = unit @ unit.T
    n = len(x)
    return float((cos.sum() - cos.diagonal().sum()) / (n * (n - 1)))


def _label_like(n: int, dim: int) -> torch.Tensor:
    """Embeddings with a shared component, as a text encoder's prompts have (mean cosine ~0.35)."""
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, dim, generator=gen) + 0.75 * torch.randn(1, dim, generator=gen)


def test_gmc_keeps_labels_apart_at_initialisation(tiny_model):
    from sigrl.model.gmc import GMC

    torch.manual_seed(0)
    h = _label_like(24, tiny_model.dim)
    base = _mean_pairwise_cosine(h)
    assert 0.2 < base < 0.6
    with torch.no_grad():
        residual = GMC(tiny_model.dim).eval()(h)
        reference = GMC(tiny_model.dim, residual=False).eval()(h)
    assert abs(_mean_pairwise_cosine(residual) - base) < 0.02
    # the reference form maps every label to nearly one vector: what the residual is there to prevent
    assert _mean_pairwise_cosine(reference) > 0.95


def test_gmc_is_permutation_equivariant(tiny_model):
    gmc = copy.deepcopy(tiny_model.gmc).eval()
    gmc.gate.data.fill_(1.0)  # as after training: the graph term is live
    torch.manual_seed(0)
    h = torch.randn(13, tiny_model.dim)
    perm = torch.randperm(13)
    with torch.no_grad():
        out = gmc(h)
        out_perm = gmc(h[perm])
    assert (out_perm - out[perm]).abs().max().item() <= 1e-5
    # and it really mixes labels: changing one label changes the others' outputs
    h2 = h.clone()
    h2[0] += 1.0
    with torch.no_grad():
        assert (gmc(h2)[1:] - out[1:]).abs().max().item() > 1e-4


def test_gmc_row_chunking_is_exact(tiny_model, monkeypatch):
    import sigrl.model.gmc as gmc_module

    gmc = tiny_model.gmc.eval()
    h = torch.randn(40, tiny_model.dim)
    with torch.no_grad():
        whole = gmc(h)
        monkeypatch.setattr(gmc_module, "_PAIR_BUDGET", 1)  # one query row at a time
        rows = gmc(h)
    assert (whole - rows).abs().max().item() <= 1e-6


def test_scores_depend_on_the_label_set(tiny_model, tiny_images):
    """Scores are normalised over the scored set: adding a label changes the others' scores."""
    with torch.no_grad():
        h = torch.randn(6, tiny_model.dim)
        images = tiny_model.normalize_uint8(tiny_images)
        five = tiny_model(images, tiny_model.label_side(h[:5]))
        six = tiny_model(images, tiny_model.label_side(h))
    assert (five - six[:, :5]).abs().max().item() > 1e-4


def test_gmc_blocks_report_progress_and_stay_exact(tiny_model, monkeypatch):
    # Residual GMC with a live gate: H + gate * GAT(H), in row blocks, reported block by block.
    import sigrl.model.gmc as gmc_module

    gmc = copy.deepcopy(tiny_model.gmc).eval()
    gmc.gate.data.fill_(0.5)
    h = torch.randn(50, tiny_model.dim)
    with torch.no_grad():
        whole = gmc(h)
        monkeypatch.setattr(gmc_module, "_PAIR_BUDGET", 7 * 50 * 16)  # 7 query rows per block in layer 1
        seen: list[int] = []
        blocks = gmc(h, seen.append)
    assert (whole - blocks).abs().max().item() <= 1e-6
    assert sum(seen) == 50 * gmc.layers and max(seen) == 7


def test_gmc_memory_does_not_grow_with_n(monkeypatch):
    # Issue 14: GMC's resident memory is bounded by its block size, not by N (4x the labels here,
    # 16x the pairs). Blocks collected in a list grew it ~N^2 through heap fragmentation.
    import sigrl.model.gmc as gmc_module
    from sigrl.bench.timing import PeakRss

    from sigrl.model.gmc import GMC

    monkeypatch.setattr(gmc_module, "_PAIR_BUDGET", 256 * 1024)
    torch.manual_seed(0)
    gmc = GMC(128, residual=False).eval()
    growth = {}
    with torch.inference_mode():
        for n in (200, 800):
            h = torch.randn(n, 128)
            with PeakRss() as rss:
                gmc(h)
            growth[n] = rss.growth_bytes
    assert growth[800] < growth[200] + 16 * 2**20, growth
