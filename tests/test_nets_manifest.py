"""nets/manifest.json is derived from the nets' registrations and equals them (`python -m nets.manifest`)."""

from __future__ import annotations

from nets import manifest, nets_factory, spec


def test_manifest_equals_the_registered_specs():
    specs = nets_factory.specs()
    assert manifest.PATH.read_text() == manifest.render(specs.values()), (
        "nets/manifest.json is stale: run `python -m nets.manifest`")
    zoo = manifest.load()
    assert list(zoo) == list(specs) == list(nets_factory.networks_map)
    for name, net_spec in specs.items():
        assert zoo[name] == manifest.NetInfo.of(net_spec)
        assert zoo[name].num_parameters == net_spec.num_parameters


def test_every_registered_net_has_its_published_variable_list():
    assert spec.published_nets() == sorted(manifest.load())
