//! The kinds the controller watches: where each is served, whether it renders a Secret, and
//! the key a watched object is known by.

use std::fmt;

/// A watched kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    ExternalSecret,
    SecretStore,
    ClusterSecretStore,
    VaultConnection,
    VaultAuth,
    VaultStaticSecret,
    VaultDynamicSecret,
    TresorSecret,
}

/// Where a kind is served. ESO serves `v1` and `v1beta1` of the same objects (one storage,
/// conversion between them): the controller watches one of them, `v1` when the cluster
/// serves it, so no object is seen twice.
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    pub kind: Kind,
    pub group: &'static str,
    /// Served versions, preferred first.
    pub versions: &'static [&'static str],
    pub plural: &'static str,
    pub namespaced: bool,
    /// It renders a Secret (the others are what those resources refer to).
    pub produces: bool,
}

const EXTERNAL_SECRET: KindInfo = KindInfo {
    kind: Kind::ExternalSecret,
    group: "external-secrets.io",
    versions: &["v1", "v1beta1"],
    plural: "externalsecrets",
    namespaced: true,
    produces: true,
};
const SECRET_STORE: KindInfo = KindInfo {
    kind: Kind::SecretStore,
    group: "external-secrets.io",
    versions: &["v1", "v1beta1"],
    plural: "secretstores",
    namespaced: true,
    produces: false,
};
const CLUSTER_SECRET_STORE: KindInfo = KindInfo {
    kind: Kind::ClusterSecretStore,
    group: "external-secrets.io",
    versions: &["v1", "v1beta1"],
    plural: "clustersecretstores",
    namespaced: false,
    produces: false,
};
const VAULT_CONNECTION: KindInfo = KindInfo {
    kind: Kind::VaultConnection,
    group: "secrets.hashicorp.com",
    versions: &["v1beta1"],
    plural: "vaultconnections",
    namespaced: true,
    produces: false,
};
const VAULT_AUTH: KindInfo = KindInfo {
    kind: Kind::VaultAuth,
    group: "secrets.hashicorp.com",
    versions: &["v1beta1"],
    plural: "vaultauths",
    namespaced: true,
    produces: false,
};
const VAULT_STATIC_SECRET: KindInfo = KindInfo {
    kind: Kind::VaultStaticSecret,
    group: "secrets.hashicorp.com",
    versions: &["v1beta1"],
    plural: "vaultstaticsecrets",
    namespaced: true,
    produces: true,
};
const VAULT_DYNAMIC_SECRET: KindInfo = KindInfo {
    kind: Kind::VaultDynamicSecret,
    group: "secrets.hashicorp.com",
    versions: &["v1beta1"],
    plural: "vaultdynamicsecrets",
    namespaced: true,
    produces: true,
};
const TRESOR_SECRET: KindInfo = KindInfo {
    kind: Kind::TresorSecret,
    group: crate::model::tresor::API_GROUP,
    versions: &["v1alpha1"],
    plural: "tresorsecrets",
    namespaced: true,
    produces: true,
};

pub const ALL: [KindInfo; 8] = [
    EXTERNAL_SECRET,
    SECRET_STORE,
    CLUSTER_SECRET_STORE,
    VAULT_CONNECTION,
    VAULT_AUTH,
    VAULT_STATIC_SECRET,
    VAULT_DYNAMIC_SECRET,
    TRESOR_SECRET,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::ExternalSecret => "ExternalSecret",
            Kind::SecretStore => "SecretStore",
            Kind::ClusterSecretStore => "ClusterSecretStore",
            Kind::VaultConnection => "VaultConnection",
            Kind::VaultAuth => "VaultAuth",
            Kind::VaultStaticSecret => "VaultStaticSecret",
            Kind::VaultDynamicSecret => "VaultDynamicSecret",
            Kind::TresorSecret => "TresorSecret",
        }
    }

    pub fn info(self) -> KindInfo {
        match self {
            Kind::ExternalSecret => EXTERNAL_SECRET,
            Kind::SecretStore => SECRET_STORE,
            Kind::ClusterSecretStore => CLUSTER_SECRET_STORE,
            Kind::VaultConnection => VAULT_CONNECTION,
            Kind::VaultAuth => VAULT_AUTH,
            Kind::VaultStaticSecret => VAULT_STATIC_SECRET,
            Kind::VaultDynamicSecret => VAULT_DYNAMIC_SECRET,
            Kind::TresorSecret => TRESOR_SECRET,
        }
    }

    pub fn produces(self) -> bool {
        self.info().produces
    }

    /// ESO's kinds carry ESO's condition reasons and status shape.
    pub fn is_eso(self) -> bool {
        self.info().group == "external-secrets.io"
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A watched object: kind, namespace (empty for cluster-scoped kinds) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjKey {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    pub fn new(kind: Kind, namespace: &str, name: &str) -> ObjKey {
        ObjKey {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for ObjKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}
