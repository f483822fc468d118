//! The first check on a would-be component's bytes, shared by the engine
//! (before compiling) and the client (before reading signatures), so both
//! refuse bad input with the same words.

/// The bytes are not a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly component: the file does not start with the \\0asm magic bytes")]
    NotWasm,
    /// The bytes are a core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component: build it for wasm32-wasip2 \
         (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// The header names a binary format version wasp does not know.
    #[error(
        "unsupported WebAssembly binary version {version:#x} (layer {layer}): expected a component (version 0xd, layer 1)"
    )]
    UnknownVersion {
        /// The version field of the header.
        version: u16,
        /// The layer field of the header.
        layer: u16,
    },
}

/// Refuses input that is not WebAssembly, and core modules, each with its
/// own error. Anything else may still be truncated or invalid; the parser
/// that reads it says so.
pub fn check_header(bytes: &[u8]) -> Result<(), HeaderError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(HeaderError::NotWasm);
    }
    // A 16-bit version and a 16-bit layer: core modules are version 1,
    // layer 0; components version 0xd, layer 1.
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    let layer = u16::from_le_bytes([bytes[6], bytes[7]]);
    match (version, layer) {
        (_, 0) => Err(HeaderError::CoreModule),
        (0xd, 1) => Ok(()),
        (version, layer) => Err(HeaderError::UnknownVersion { version, layer }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_garbage_core_modules_and_components_apart() {
        assert_eq!(check_header(b"\0asm\x0d\x00\x01\x00"), Ok(()));
        assert_eq!(
            check_header(b"\0asm\x01\x00\x00\x00"),
            Err(HeaderError::CoreModule)
        );
        assert_eq!(check_header(b"#!/bin/sh\necho"), Err(HeaderError::NotWasm));
        assert_eq!(check_header(b"\0as"), Err(HeaderError::NotWasm));
        assert_eq!(
            check_header(b"\0asm\x0e\x00\x01\x00"),
            Err(HeaderError::UnknownVersion {
                version: 0xe,
                layer: 1
            })
        );
    }
}
