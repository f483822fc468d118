//! Cheap checks on a module's raw bytes, before anything is compiled.

use wasp_proto::component::check_header;

use crate::error::LoadError;
use crate::limits::Limit;

/// Refuses oversize input (wasmtime leaves compile-time denial of service to
/// the embedder), then anything that is not a component
/// (`wasp_proto::component::check_header`). The compiler reports truncated
/// or invalid components.
pub(crate) fn check(bytes: &[u8], module_limit: usize) -> Result<(), LoadError> {
    if bytes.len() > module_limit {
        return Err(LoadError::TooLarge {
            size: bytes.len(),
            limit: Limit::ModuleBytes(module_limit),
        });
    }
    check_header(bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasp_proto::component::HeaderError;

    #[test]
    fn refuses_oversize_before_the_header() {
        let component = b"\0asm\x0d\x00\x01\x00";
        assert!(check(component, 100).is_ok());
        assert!(matches!(
            check(component, 4),
            Err(LoadError::TooLarge { size: 8, .. })
        ));
        assert!(matches!(
            check(b"\0asm\x01\x00\x00\x00", 100),
            Err(LoadError::Header(HeaderError::CoreModule))
        ));
    }
}
