//! Publish-time checks that a module satisfies the guest ABI: v1 (`weft_alloc`,
//! `weft_handle`) or v2 (`weft_run`, `weft_buffer`, `weft_reserve`, optional `weft_init`).

use wasmtime::{ExternType, Module, ValType};

/// Why a module was refused at publish time. Each variant names the problem precisely,
/// because the message goes straight back to the author.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// The bytes are not a WebAssembly module at all.
    #[error("not a WebAssembly module (missing the \\0asm header)")]
    NotWasm,
    /// The module does not compile.
    #[error("module does not compile: {0}")]
    Compile(String),
    /// A required export is missing.
    #[error("module does not export `{0}`")]
    MissingExport(&'static str),
    /// A required export has the wrong type.
    #[error("export `{name}` must be {expected}")]
    WrongExport {
        /// The export.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The module imports something outside `wasi_snapshot_preview1` and `weft`.
    #[error("module imports `{module}::{name}`; only `wasi_snapshot_preview1` and `weft` (call, result) are available")]
    ForbiddenImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// An import of an allowed module that the host does not provide, or with the wrong type.
    #[error("module imports cannot be satisfied: {0}")]
    Link(String),
    /// The module is larger than the server accepts.
    #[error("module is {size} bytes, more than the {max} allowed")]
    TooLarge {
        /// Module size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// Checks the imports and exports of a compiled module.
pub(crate) fn check_interface(module: &Module) -> Result<(), ValidationError> {
    for import in module.imports() {
        let allowed = match import.module() {
            "wasi_snapshot_preview1" => true,
            "weft" => matches!(import.name(), "call" | "result"),
            _ => false,
        };
        if !allowed {
            return Err(ValidationError::ForbiddenImport {
                module: import.module().to_owned(),
                name: import.name().to_owned(),
            });
        }
    }
    match module.get_export("memory") {
        Some(ExternType::Memory(memory)) if !memory.is_64() => {}
        Some(_) => return Err(ValidationError::WrongExport { name: "memory", expected: "a 32-bit linear memory" }),
        None => return Err(ValidationError::MissingExport("memory")),
    }
    if module.get_export("weft_run").is_some() {
        check_func(module, "weft_run", &[ValType::I32], &[ValType::I64], "a function (i32) -> i64")?;
        check_func(module, "weft_buffer", &[], &[ValType::I64], "a function () -> i64")?;
        check_func(module, "weft_reserve", &[ValType::I32], &[ValType::I32], "a function (i32) -> i32")?;
        if module.get_export(crate::snapshot::INIT_EXPORT).is_some() {
            check_func(module, crate::snapshot::INIT_EXPORT, &[], &[], "a function () -> ()")?;
        }
    } else {
        check_func(module, "weft_alloc", &[ValType::I32], &[ValType::I32], "a function (i32) -> i32")?;
        check_func(
            module,
            "weft_handle",
            &[ValType::I32, ValType::I32],
            &[ValType::I64],
            "a function (i32, i32) -> i64",
        )?;
    }
    if module.get_export("_initialize").is_some() {
        check_func(module, "_initialize", &[], &[], "a function () -> ()")?;
    }
    Ok(())
}

fn check_func(
    module: &Module,
    name: &'static str,
    params: &[ValType],
    results: &[ValType],
    expected: &'static str,
) -> Result<(), ValidationError> {
    let Some(export) = module.get_export(name) else {
        return Err(ValidationError::MissingExport(name));
    };
    let matches = export.func().is_some_and(|f| {
        let same = |a: &ValType, b: &ValType| ValType::eq(a, b);
        f.params().len() == params.len()
            && f.results().len() == results.len()
            && f.params().zip(params).all(|(a, b)| same(&a, b))
            && f.results().zip(results).all(|(a, b)| same(&a, b))
    });
    if matches { Ok(()) } else { Err(ValidationError::WrongExport { name, expected }) }
}
