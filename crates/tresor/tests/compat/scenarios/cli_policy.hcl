# Used by the cli_policy_token and cli_generic scenarios (`bao policy write`, `policy=@file`).
path "secret/data/app/*" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/app/*" {
  capabilities = ["list"]
}
