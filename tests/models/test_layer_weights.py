"""`NetWeights`: the per-layer structure the gradient adapter and the ensemble exchange, and its view by name."""

import pytest
import torch

from mbmeta.models.ensemble import EnsembleMLP
from mbmeta.models.layer_weights import LayerWeights, NetWeights, as_net_weights


def mlp() -> EnsembleMLP:
    return EnsembleMLP(4, 3, (8, 8), ensemble_size=2, generator=torch.Generator().manual_seed(0))


def test_params_by_name_are_the_named_parameters_in_order():
    net = mlp()
    assert list(net.params().items()) == list(net.named_parameters())
    assert all(net.params().layer(i) == (layer.weight, layer.bias) for i, layer in enumerate(net.layers))


def test_a_mapping_by_name_reads_back_into_the_same_layers():
    net = mlp()
    params = net.params()
    again = as_net_weights(dict(params.items()))
    assert list(again.layers) == [0, 1, 2]
    assert all(again.layer(i) == params.layer(i) for i in range(3))
    assert as_net_weights(params) is params


@pytest.mark.parametrize("name", ["layers.0.kernel", "layer.0.weight", "layers.x.bias", "layers.0.weight.grad"])
def test_a_name_that_is_no_layer_weight_is_refused_by_name(name):
    with pytest.raises(ValueError, match=f"not a layer weight name: '{name}'"):
        as_net_weights({name: torch.zeros(1)})


def test_missing_fields_and_layers_keep_the_networks_own():
    w = torch.ones(2, 4, 8)
    only_weight = NetWeights({1: LayerWeights(w, None)})
    assert list(only_weight) == ["layers.1.weight"] and len(only_weight) == 1
    assert "layers.1.bias" not in only_weight and "layers.0.weight" not in only_weight
    assert only_weight.layer(0) == LayerWeights(None, None) and only_weight.layer(1).bias is None
    with pytest.raises(KeyError):
        only_weight["layers.1.bias"]


def test_last_keeps_the_last_layers_and_map_keeps_absent_fields_absent():
    params = mlp().params()
    assert list(params.last(2).layers) == [1, 2]
    assert list(params.last(5).layers) == [0, 1, 2]
    assert list(params.last(0).layers) == []
    doubled = NetWeights({0: LayerWeights(torch.ones(3), None)}).map(lambda t: 2 * t)
    assert torch.equal(doubled.layer(0).weight, torch.full((3,), 2.0)) and doubled.layer(0).bias is None


def test_grouped_forward_takes_the_structure_or_names_alike():
    net = mlp()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 5, 4, generator=g)
    bias = net.layers[1].bias.unsqueeze(1) + torch.randn(2, 3, 1, 8, generator=g)  # per group, layer 1 only
    by_layer = net.grouped_forward(x, NetWeights({1: LayerWeights(None, bias)}))
    by_name = net.grouped_forward(x, {"layers.1.bias": bias})
    assert torch.equal(by_layer, by_name)
    assert not torch.allclose(by_layer, net.grouped_forward(x))  # the replaced bias was used


def test_grouped_forward_refuses_weights_for_a_layer_it_does_not_have():
    net = mlp()
    with pytest.raises(ValueError, match="params for layer 3, but the net has 3 layers"):
        net.grouped_forward(torch.zeros(2, 1, 1, 4), {"layers.3.bias": torch.zeros(2, 1, 3)})
