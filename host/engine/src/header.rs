//! Cheap checks on a module's raw bytes, before anything is compiled.

use crate::error::LoadError;
use crate::limits::Limit;

/// Refuses oversize input, input that is not WebAssembly, and core modules,
/// each with its own error. Anything else goes on to the compiler, which
/// reports truncated or invalid components.
pub(crate) fn check(bytes: &[u8], module_limit: usize) -> Result<(), LoadError> {
    if bytes.len() > module_limit {
        return Err(LoadError::TooLarge {
            size: bytes.len(),
            limit: Limit::ModuleBytes(module_limit),
        });
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    // The header's next four bytes are a 16-bit version and a 16-bit layer:
    // core modules are version 1, layer 0; components version 0xd, layer 1.
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    let layer = u16::from_le_bytes([bytes[6], bytes[7]]);
    match (version, layer) {
        (_, 0) => Err(LoadError::CoreModule),
        (0xd, 1) => Ok(()),
        (version, layer) => Err(LoadError::UnknownVersion { version, layer }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_garbage_core_modules_and_components_apart() {
        let component = b"\0asm\x0d\x00\x01\x00";
        assert!(check(component, 100).is_ok());
        assert!(matches!(
            check(b"\0asm\x01\x00\x00\x00", 100),
            Err(LoadError::CoreModule)
        ));
        assert!(matches!(
            check(b"#!/bin/sh\necho", 100),
            Err(LoadError::NotWasm)
        ));
        assert!(matches!(check(b"\0as", 100), Err(LoadError::NotWasm)));
        assert!(matches!(
            check(component, 4),
            Err(LoadError::TooLarge { size: 8, .. })
        ));
    }
}
