#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]

use std::path::Path;

use super::*;

fn load(name: &str, text: &str) -> Manifests {
    let mut m = Manifests::default();
    m.add_text(Path::new(name), text).unwrap();
    m
}

#[test]
fn the_seeds_secret_store_and_external_secret() {
    let m = load(
        "eso-seed.yaml",
        include_str!("../../tests/data/eso-seed.yaml"),
    );
    assert_eq!(m.resources.len(), 2);
    assert_eq!(m.skipped, 1, "the Deployment is skipped");
    let Resource::SecretStore(store) = &m.resources[0] else {
        panic!("{:?}", m.resources[0].kind())
    };
    let vault = store.spec.provider.vault.as_ref().unwrap();
    assert_eq!(
        vault.server,
        "http://vault-core-dev.ameide-dev.svc.cluster.local:8200"
    );
    assert_eq!(vault.path.as_deref(), Some("secret"));
    let k = vault.auth.kubernetes.as_ref().unwrap();
    assert_eq!(
        (k.mount_path.as_deref(), k.role.as_str()),
        (Some("kubernetes"), "external-secrets")
    );
    assert_eq!(
        k.service_account_ref.as_ref().unwrap().name,
        "external-secrets"
    );
    let Resource::ExternalSecret(es) = &m.resources[1] else {
        panic!()
    };
    assert_eq!(es.metadata.namespace.as_deref(), Some("ameide-dev"));
    assert_eq!(es.spec.target.name.as_deref(), Some("ghcr-pull"));
    assert_eq!(
        es.spec.target.template.as_ref().unwrap().type_.as_deref(),
        Some("kubernetes.io/dockerconfigjson")
    );
    assert_eq!(es.spec.data[0].secret_key, ".dockerconfigjson");
    assert_eq!(es.spec.data[0].remote_ref.key, "ghcr-token");
    assert_eq!(
        es.spec.data[0].remote_ref.property.as_deref(),
        Some("value")
    );
}

#[test]
fn eso_documentation_shapes_with_unknown_fields() {
    let m = load(
        "eso-docs.yaml",
        include_str!("../../tests/data/eso-docs.yaml"),
    );
    let kinds: Vec<&str> = m.resources.iter().map(Resource::kind).collect();
    assert_eq!(
        kinds,
        [
            "SecretStore",
            "ClusterSecretStore",
            "ExternalSecret",
            "ExternalSecret"
        ],
        "the List's item is unwrapped"
    );
    let Resource::SecretStore(store) = &m.resources[0] else {
        panic!()
    };
    let vault = store.spec.provider.vault.as_ref().unwrap();
    assert_eq!(vault.namespace.as_deref(), Some("admin"));
    assert_eq!(vault.ca_provider.as_ref().unwrap().type_, "ConfigMap");
    let t = vault.auth.token_secret_ref.as_ref().unwrap();
    assert_eq!(
        (t.name.as_str(), t.key.as_deref()),
        ("vault-token", Some("token"))
    );
    let Resource::ClusterSecretStore(cs) = &m.resources[1] else {
        panic!()
    };
    let cv = cs.spec.provider.vault.as_ref().unwrap();
    assert_eq!(cv.version.as_deref(), Some("v1"));
    assert!(cv.ca_bundle.is_some());
    assert_eq!(
        cv.auth
            .kubernetes
            .as_ref()
            .unwrap()
            .secret_ref
            .as_ref()
            .unwrap()
            .key
            .as_deref(),
        Some("vault")
    );
    let Resource::ExternalSecret(es) = &m.resources[2] else {
        panic!()
    };
    let spec = &es.spec;
    assert_eq!(spec.refresh_interval.as_deref(), Some("15s"));
    assert_eq!(spec.target.creation_policy.as_deref(), Some("Merge"));
    let tpl = spec.target.template.as_ref().unwrap();
    assert_eq!(tpl.engine_version.as_deref(), Some("v2"));
    assert_eq!(tpl.metadata.labels["app"], "{{ .name | lower }}");
    assert!(tpl.data["config.yaml"].contains("{{ .password | quote }}"));
    // `version: 2` (a YAML number) reads as the string ESO's schema has.
    assert_eq!(spec.data[0].remote_ref.version.as_deref(), Some("2"));
    assert_eq!(
        spec.data[1].remote_ref.property.as_deref(),
        Some("nested.password")
    );
    assert_eq!(spec.data_from.len(), 2);
    assert_eq!(
        spec.data_from[0]
            .extract
            .as_ref()
            .unwrap()
            .property
            .as_deref(),
        Some("config")
    );
    assert_eq!(
        spec.data_from[1]
            .extract
            .as_ref()
            .unwrap()
            .version
            .as_deref(),
        Some("3")
    );
    assert_eq!(es.metadata.annotations["force-sync"], "1700000000");
}

#[test]
fn vso_documentation_shapes() {
    let m = load(
        "vso-docs.yaml",
        include_str!("../../tests/data/vso-docs.yaml"),
    );
    let kinds: Vec<&str> = m.resources.iter().map(Resource::kind).collect();
    assert_eq!(
        kinds,
        [
            "VaultConnection",
            "VaultAuth",
            "VaultStaticSecret",
            "VaultDynamicSecret"
        ]
    );
    let Resource::VaultConnection(c) = &m.resources[0] else {
        panic!()
    };
    assert_eq!(c.spec.ca_cert_secret_ref.as_deref(), Some("vault-ca"));
    let Resource::VaultAuth(a) = &m.resources[1] else {
        panic!()
    };
    assert_eq!(a.spec.method, "kubernetes");
    assert_eq!(a.spec.mount, "demo-auth-mount");
    let k = a.spec.kubernetes.as_ref().unwrap();
    assert_eq!(
        (k.role.as_str(), k.audiences.as_slice()),
        ("role1", &["vault".to_owned()][..])
    );
    let Resource::VaultStaticSecret(s) = &m.resources[2] else {
        panic!()
    };
    assert_eq!(
        (
            s.spec.type_.as_str(),
            s.spec.mount.as_str(),
            s.spec.path.as_str()
        ),
        ("kv-v2", "kvv2", "webapp/config")
    );
    assert_eq!(s.spec.version.as_deref(), Some("2"));
    assert_eq!(s.spec.refresh_after.as_deref(), Some("30s"));
    let d = &s.spec.destination;
    assert!(d.create);
    assert_eq!(d.labels["app"], "web");
    let t = d.transformation.as_ref().unwrap();
    assert!(t.exclude_raw);
    assert_eq!(t.excludes, ["^internal_.*"]);
    assert!(t.templates["url"].text.contains("get .Secrets"));
    assert_eq!(s.spec.rollout_restart_targets[0].name, "vso-web");
    let Resource::VaultDynamicSecret(dy) = &m.resources[3] else {
        panic!()
    };
    assert_eq!(dy.spec.renewal_percent, Some(67));
    assert!(dy.spec.revoke);
    assert_eq!(dy.spec.vault_auth_ref.as_deref(), Some("app/static-auth"));
}

#[test]
fn tresor_secret_shape() {
    let m = load("tresor.yaml", include_str!("../../tests/data/tresor.yaml"));
    let Resource::TresorSecret(t) = &m.resources[0] else {
        panic!()
    };
    let spec = &t.spec;
    assert_eq!(spec.sources.len(), 3);
    assert_eq!(
        spec.sources[0].kv.as_ref().unwrap().keys,
        ["api_key", "nested.value"]
    );
    assert_eq!(spec.sources[1].kv.as_ref().unwrap().kv_version, Some(1));
    assert_eq!(
        spec.sources[2].database.as_ref().unwrap().role.as_deref(),
        Some("shop-app")
    );
    assert_eq!(spec.sources[2].prefix, "DB_");
    assert_eq!(
        spec.auth
            .as_ref()
            .unwrap()
            .kubernetes
            .as_ref()
            .unwrap()
            .role,
        "shop-app"
    );
    assert_eq!(spec.rollout_restart_targets.len(), 2);
    assert!(spec.template.as_ref().unwrap().data["DSN"].contains(".DB_password"));
}

#[test]
fn the_crd_schema_matches_the_types() {
    // The shipped CRD parses, names the kind and version, and its schema lists every spec
    // field the type reads.
    let crd = include_str!("../../deploy/crds/tresor.dev_tresorsecrets.yaml");
    let docs = crate::yaml::documents(crd).unwrap();
    let crd = &docs[0].1;
    assert_eq!(crd["kind"], "CustomResourceDefinition");
    assert_eq!(crd["spec"]["group"], tresor::API_GROUP);
    assert_eq!(crd["spec"]["names"]["kind"], "TresorSecret");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(
        format!(
            "{}/{}",
            crd["spec"]["group"].as_str().unwrap(),
            version["name"].as_str().unwrap()
        ),
        tresor::API_VERSION
    );
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    for field in [
        "connection",
        "auth",
        "sources",
        "refreshInterval",
        "target",
        "template",
        "rolloutRestartTargets",
    ] {
        assert!(spec.get(field).is_some(), "CRD schema lacks spec.{field}");
    }
    let source = &spec["sources"]["items"]["properties"];
    for field in ["kv", "database", "prefix"] {
        assert!(
            source.get(field).is_some(),
            "CRD schema lacks sources[].{field}"
        );
    }
    // The example in the docs is a valid TresorSecret for the parser.
    let m = load("tresor.yaml", include_str!("../../tests/data/tresor.yaml"));
    assert_eq!(m.resources.len(), 1);
}

#[test]
fn invalid_and_unsupported_inputs_are_named() {
    let mut m = Manifests::default();
    let err = m
        .add_text(
            Path::new("x.yaml"),
            "apiVersion: external-secrets.io/v1alpha1\nkind: ExternalSecret\nmetadata: {name: a}\n",
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "x.yaml:1: ExternalSecret a: apiVersion external-secrets.io/v1alpha1 is not supported"
        ),
        "{err}"
    );
    let err = m
        .add_text(Path::new("y.yaml"), "---\napiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: b}\nspec: {data: 3}\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("y.yaml:1: ExternalSecret b:"), "{err}");
    let err = m
        .add_text(
            Path::new("z.yaml"),
            "apiVersion: tresor.dev/v1alpha1\nkind: TresorSecret\nmetadata: {}\n",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("metadata.name is missing"), "{err}");
    assert!(m.add_text(Path::new("bad.yaml"), "a: [").is_err());
}

#[test]
fn directories_are_read_recursively_in_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        include_str!("../../tests/data/tresor.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sub/a.yml"),
        include_str!("../../tests/data/eso-seed.yaml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
    std::fs::write(dir.path().join(".hidden.yaml"), "not yaml: [").unwrap();
    let m = Manifests::load(&[dir.path().to_owned()]).unwrap();
    let kinds: Vec<&str> = m.resources.iter().map(Resource::kind).collect();
    assert_eq!(kinds, ["TresorSecret", "SecretStore", "ExternalSecret"]);
}
