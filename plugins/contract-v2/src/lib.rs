//! Exports `graft:migration/migration` of a contract version no runner of
//! this repository supports (0.3.0, or 1.0.0 with the feature `v1`): the
//! runner must refuse it with an error naming the versions it supports.

#[cfg(not(feature = "v1"))]
wit_bindgen::generate!({
    inline: "
        package graft:migration@0.3.0;
        interface migration {
            describe: func() -> string;
        }
        world plugin {
            export migration;
        }
    ",
});

#[cfg(feature = "v1")]
wit_bindgen::generate!({
    inline: "
        package graft:migration@1.0.0;
        interface migration {
            describe: func() -> string;
        }
        world plugin {
            export migration;
        }
    ",
});

struct Future;

impl exports::graft::migration::migration::Guest for Future {
    fn describe() -> String {
        "mod-future-1.0.0".into()
    }
}

export!(Future);
