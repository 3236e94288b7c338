//! The raw bindings generated from `wit/` by wit-bindgen.
//!
//! `imports` holds the shared types and every host capability once; each plugin
//! kind's module maps those interfaces onto it (`with`), so a `SessionSpec` is
//! one type whichever kind you write. Plugin authors use the wrappers in the
//! rest of the crate, not these modules.

/// Shared types and all host capabilities.
pub mod imports {
    wit_bindgen::generate!({
        inline: r#"
            package clauderon:sdk;
            world imports {
                import clauderon:plugin/types@0.1.0;
                import clauderon:plugin/log@0.1.0;
                import clauderon:plugin/kv@0.1.0;
                import clauderon:plugin/process@0.1.0;
                import clauderon:plugin/http@0.1.0;
                import clauderon:plugin/container@0.1.0;
                import clauderon:plugin/kube@0.1.0;
                import clauderon:plugin/environment@0.1.0;
                import clauderon:plugin/secret-files@0.1.0;
            }
        "#,
        path: "../wit",
        world: "clauderon:sdk/imports",
        generate_all,
    });
}

/// The `backend` world.
pub mod backend {
    wit_bindgen::generate!({
        path: "../wit",
        world: "clauderon:plugin/backend@0.1.0",
        with: {
            "clauderon:plugin/types@0.1.0": crate::bindings::imports::clauderon::plugin::types,
            "clauderon:plugin/log@0.1.0": crate::bindings::imports::clauderon::plugin::log,
            "clauderon:plugin/kv@0.1.0": crate::bindings::imports::clauderon::plugin::kv,
            "clauderon:plugin/process@0.1.0": crate::bindings::imports::clauderon::plugin::process,
            "clauderon:plugin/http@0.1.0": crate::bindings::imports::clauderon::plugin::http,
            "clauderon:plugin/container@0.1.0": crate::bindings::imports::clauderon::plugin::container,
            "clauderon:plugin/kube@0.1.0": crate::bindings::imports::clauderon::plugin::kube,
        },
        pub_export_macro: true,
        export_macro_name: "__export_backend_world",
        default_bindings_module: "clauderon_sdk::bindings::backend",
    });
}

/// The `agent` world.
pub mod agent {
    wit_bindgen::generate!({
        path: "../wit",
        world: "clauderon:plugin/agent@0.1.0",
        with: {
            "clauderon:plugin/types@0.1.0": crate::bindings::imports::clauderon::plugin::types,
            "clauderon:plugin/log@0.1.0": crate::bindings::imports::clauderon::plugin::log,
            "clauderon:plugin/kv@0.1.0": crate::bindings::imports::clauderon::plugin::kv,
        },
        pub_export_macro: true,
        export_macro_name: "__export_agent_world",
        default_bindings_module: "clauderon_sdk::bindings::agent",
    });
}

/// The `credential-source` world.
pub mod credential_source {
    wit_bindgen::generate!({
        path: "../wit",
        world: "clauderon:plugin/credential-source@0.1.0",
        with: {
            "clauderon:plugin/types@0.1.0": crate::bindings::imports::clauderon::plugin::types,
            "clauderon:plugin/log@0.1.0": crate::bindings::imports::clauderon::plugin::log,
            "clauderon:plugin/process@0.1.0": crate::bindings::imports::clauderon::plugin::process,
            "clauderon:plugin/environment@0.1.0": crate::bindings::imports::clauderon::plugin::environment,
            "clauderon:plugin/secret-files@0.1.0": crate::bindings::imports::clauderon::plugin::secret_files,
        },
        pub_export_macro: true,
        export_macro_name: "__export_credential_source_world",
        default_bindings_module: "clauderon_sdk::bindings::credential_source",
    });
}

/// The `hook` world.
pub mod hook {
    wit_bindgen::generate!({
        path: "../wit",
        world: "clauderon:plugin/hook@0.1.0",
        with: {
            "clauderon:plugin/types@0.1.0": crate::bindings::imports::clauderon::plugin::types,
            "clauderon:plugin/log@0.1.0": crate::bindings::imports::clauderon::plugin::log,
            "clauderon:plugin/kv@0.1.0": crate::bindings::imports::clauderon::plugin::kv,
            "clauderon:plugin/http@0.1.0": crate::bindings::imports::clauderon::plugin::http,
        },
        pub_export_macro: true,
        export_macro_name: "__export_hook_world",
        default_bindings_module: "clauderon_sdk::bindings::hook",
    });
}
