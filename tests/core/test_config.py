from pathlib import Path

import pytest

from appliance.core.config import ConfigError, Settings, load

REPO = Path(__file__).resolve().parents[2]


def test_config_example_documents_every_key_with_its_default() -> None:
    import tomllib

    example = tomllib.loads((REPO / "config.example.toml").read_text())
    defaults = Settings()
    for section, table in example.items():
        for key, value in table.items():
            expected = getattr(getattr(defaults, section), key)
            given = tuple(value) if isinstance(expected, tuple) else value  # a TOML array is read as a tuple
            assert str(given) == str(expected), f"{section}.{key}"
    documented = {(s, k) for s, t in example.items() for k in t}
    import dataclasses

    every = {(f.name, g.name) for f in dataclasses.fields(Settings) for g in dataclasses.fields(getattr(defaults, f.name))}
    assert documented == every
    assert load(REPO / "config.example.toml", {}) == defaults


def test_config_env_overrides_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\nport = 9000\n[models]\nbatched = false\n")
    s = load(cfg, {"APPLIANCE_SERVER__PORT": "9100", "APPLIANCE_WORKER__WORKERS_PER_DEVICE": "2", "APPLIANCE_DATA_DIR": "/srv/d"})
    assert s.server.port == 9100
    assert s.models.batched is False
    assert s.worker.workers_per_device == 2
    assert s.storage.data_dir == Path("/srv/d")


def test_config_path_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[storage]\ndata_dir = "/var/lib/x"\n')
    assert load(None, {"APPLIANCE_CONFIG": str(cfg)}).storage.data_dir == Path("/var/lib/x")


@pytest.mark.parametrize(
    ("toml", "env", "named"),
    [
        ("[server]\nprot = 1\n", {}, "server.prot"),
        ("[sever]\nport = 1\n", {}, "[sever]"),
        ("[server]\nport = 'abc'\n", {}, "server.port"),
        ("[server]\nport = 70000\n", {}, "server.port"),
        ("[models]\ndevice = 'tpu'\n", {}, "models.device"),
        ("[models]\nbatched = 'maybe'\n", {}, "models.batched"),
        ("", {"APPLIANCE_SERVER__PORT": "eighty"}, "server.port"),
        ("", {"APPLIANCE_SERVER__NOPE": "1"}, "server.nope"),
        ("", {"APPLIANCE_NOSECTION__X": "1"}, "APPLIANCE_NOSECTION__X"),
        ("[server\n", {}, "not valid TOML"),
    ],
)
def test_config_bad_key_or_value_names_it(tmp_path: Path, toml: str, env: dict[str, str], named: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError, match=named.replace("[", r"\[")):
        load(cfg, env)


def test_config_missing_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(tmp_path / "nope.toml", {})


def test_settings_replace_validates() -> None:
    assert Settings().replace("server", port=8123).server.port == 8123
    with pytest.raises(ConfigError, match="server.port"):
        Settings().replace("server", port=0)


def test_device_settings_take_one_gpu_or_a_list(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[models]\ndevice = "cuda:0,1"\n[diarization]\ndevice = "cuda:1"\n[assist]\ndevice = "cuda:3"\n')
    s = load(cfg, {})
    assert (s.models.device, s.diarization.device, s.assist.device) == ("cuda:0,1", "cuda:1", "cuda:3")
    assert load(cfg, {"APPLIANCE_DIARIZATION__DEVICE": "cuda:0,2"}).diarization.device == "cuda:0,2"
    # The summary engine is one model on one device: a list is refused, naming the key.
    with pytest.raises(ConfigError, match=r"assist\.device.*one device"):
        load(cfg, {"APPLIANCE_ASSIST__DEVICE": "cuda:0,1"})
    for key in ("MODELS", "DIARIZATION", "ASSIST"):
        with pytest.raises(ConfigError, match=rf"{key.lower()}\.device"):
            load(cfg, {f"APPLIANCE_{key}__DEVICE": "gpu1"})
