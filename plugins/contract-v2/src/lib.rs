//! Exports `graft:migration/migration@0.2.0`, a contract major the runner
//! (0.1.x) must refuse with a clear error.

wit_bindgen::generate!({
    inline: "
        package graft:migration@0.2.0;
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
