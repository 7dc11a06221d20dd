//! Loading, environment overrides and validation of the settings.

use super::*;

#[test]
fn unknown_key_is_named() {
    let err = Settings::from_toml_str("[llm]\nmodle = \"x\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("llm.modle"), "{text}");
    assert!(text.contains("unknown key"), "{text}");
}

#[test]
fn background_periods_are_settings_and_never_zero() {
    let settings =
        Settings::from_toml_str("[csat]\ntick_secs = 7\n[handoff]\ndesk_sync_secs = 2\n").unwrap();
    assert_eq!(
        (settings.csat.tick_secs, settings.handoff.desk_sync_secs),
        (7, 2)
    );
    let defaults = (
        settings.database.outbox_retry_secs,
        settings.database.inbound_retry_secs,
        settings.assistant.recovery_delay_secs,
    );
    assert_eq!(defaults, (2, 5, 3));
    for key in [
        "database.outbox_retry_secs",
        "database.inbound_retry_secs",
        "handoff.desk_sync_secs",
        "csat.tick_secs",
    ] {
        let (section, name) = key.split_once('.').unwrap();
        let err = Settings::from_toml_str(&format!("[{section}]\n{name} = 0\n")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(key) && text.contains("at least 1"), "{text}");
    }
}

#[test]
fn widget_texts_are_known_keys_of_language_codes() {
    let ok = Settings::from_toml_str(
        "[widget.texts.pt-BR]\nsend = \"Enviar\"\n[widget.texts.fr]\nretry = \"Réessayer\"\n",
    )
    .unwrap();
    assert_eq!(ok.widget.texts["pt-BR"]["send"], "Enviar");
    let err = Settings::from_toml_str("[widget.texts.fr]\nsubmit = \"x\"\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("widget.texts.fr") && text.contains("placeholder"),
        "{text}"
    );
    let err = Settings::from_toml_str("[widget.texts.\"fr fr\"]\nsend = \"x\"\n").unwrap_err();
    assert!(err.to_string().contains("language code"), "{err}");
    let err = Settings::from_toml_str("[web]\nmax_streams = 0\n").unwrap_err();
    assert!(err.to_string().contains("web.max_streams"), "{err}");
}

#[test]
fn wrong_type_names_the_key() {
    let err = Settings::from_toml_str("[csat]\ndelay_secs = \"soon\"\n").unwrap_err();
    assert!(err.to_string().contains("csat.delay_secs"), "{err}");
}

#[test]
fn embeddings_provider_and_its_deprecated_alias() {
    let off = Settings::from_toml_str("").unwrap();
    assert_eq!(off.embeddings(), Embeddings::Off);
    let local =
        Settings::from_toml_str("[embeddings]\nprovider = \"local\"\npath = \"models/minilm\"\n")
            .unwrap();
    assert_eq!(
        local.embeddings(),
        Embeddings::Local("models/minilm".into())
    );
    let openai = Settings::from_toml_str(
        "[embeddings]\nprovider = \"openai\"\nmodel = \"text-embedding-3-small\"\n",
    )
    .unwrap();
    assert_eq!(
        openai.embeddings(),
        Embeddings::Openai("text-embedding-3-small".into())
    );
    let legacy = Settings::from_toml_str("[llm]\nembedding_model = \"minilm\"\n").unwrap();
    assert_eq!(legacy.embeddings(), Embeddings::Openai("minilm".into()));
    // [embeddings] wins over the alias.
    let both = Settings::from_toml_str(
        "[llm]\nembedding_model = \"minilm\"\n[embeddings]\nprovider = \"local\"\npath = \"m\"\n",
    )
    .unwrap();
    assert_eq!(both.embeddings(), Embeddings::Local("m".into()));
    for (toml, key) in [
        ("[embeddings]\nprovider = \"local\"\n", "embeddings.path"),
        ("[embeddings]\nprovider = \"openai\"\n", "embeddings.model"),
        ("[embeddings]\npath = \"m\"\n", "embeddings.provider"),
        ("[embeddings]\nprovider = \"onnx\"\n", "embeddings.provider"),
    ] {
        let err = Settings::from_toml_str(toml).unwrap_err().to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
}

#[test]
fn extractive_only_without_key_or_url() {
    let llm = LlmSettings::default();
    assert_eq!(llm.endpoint(), None);
    let with_url = LlmSettings {
        base_url: Some("http://127.0.0.1:1/v1".into()),
        ..LlmSettings::default()
    };
    assert_eq!(
        with_url.endpoint().as_deref(),
        Some("http://127.0.0.1:1/v1")
    );
}

#[test]
fn secret_debug_is_redacted() {
    assert_eq!(format!("{:?}", Secret::new("sk-123")), "[redacted]");
}

#[test]
fn the_deployment_example_config_loads() {
    // The shared volume of the compose file is the bundled folder here.
    let text = include_str!("../../deploy/config.toml").replace(
        "/srv/knowledge-base",
        concat!(env!("CARGO_MANIFEST_DIR"), "/knowledge-base"),
    );
    let settings = Settings::from_toml_str(&text).expect("deploy/config.toml is valid");
    assert!(settings.database.url.starts_with("postgres://"));
    assert_eq!(settings.database.heartbeat_secs, 5);
}

#[test]
fn discord_shards_are_consecutive_ids_below_the_count() {
    let ok = Settings::from_toml_str("[discord]\nshard_count = 4\nshards = [2, 3]").unwrap();
    assert_eq!(ok.discord.shard_range(), (2, 3, 4));
    assert_eq!(Settings::default().discord.shard_range(), (0, 0, 1));
    for bad in [
        "[discord]\nshard_count = 0",
        "[discord]\nshard_count = 4\nshards = []",
        "[discord]\nshard_count = 4\nshards = [1, 3]",
        "[discord]\nshard_count = 2\nshards = [2]",
    ] {
        let e = Settings::from_toml_str(bad).unwrap_err().to_string();
        assert!(e.contains("discord.shard"), "{bad}: {e}");
    }
}

#[test]
fn an_agent_cannot_be_named_as_the_bot_the_customer_or_the_system() {
    for name in ["system", "Bot", "customer"] {
        let e = Settings::from_toml_str(&format!("[[agents]]\nname = \"{name}\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("agents[0].name"), "{name}: {e}");
    }
}
