//! The one place that knows the binary encoding (bincode 2 through serde).
//!
//! Swapping the encoding means changing this file and bumping the snapshot
//! format version; nothing else names bincode.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a value could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The value could not be encoded (a bug, never bad input).
    #[error("encode: {0}")]
    Encode(#[from] bincode::error::EncodeError),
    /// The bytes are not a valid encoding of the expected type.
    #[error("decode: {0}")]
    Decode(#[from] bincode::error::DecodeError),
    /// The bytes held a valid value followed by garbage.
    #[error("decode: {trailing} trailing bytes")]
    Trailing {
        /// How many bytes were left over.
        trailing: usize,
    },
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes `value` to bytes.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(value, config())?)
}

/// Decodes a whole byte slice; leftover bytes are an error, not ignored.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config())?;
    if read != bytes.len() {
        return Err(CodecError::Trailing {
            trailing: bytes.len() - read,
        });
    }
    Ok(value)
}

/// Decodes a value from the start of `bytes`, ignoring what follows it:
/// for reading the leading fields of a record without the rest.
pub fn decode_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    Ok(bincode::serde::decode_from_slice(bytes, config())?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_trailing_bytes_are_refused() {
        let value = (42u64, String::from("x"), vec![1u32, 2, 3]);
        let mut bytes = encode(&value).expect("encodes");
        assert_eq!(
            decode::<(u64, String, Vec<u32>)>(&bytes).expect("decodes"),
            value
        );
        bytes.push(0);
        assert!(matches!(
            decode::<(u64, String, Vec<u32>)>(&bytes),
            Err(CodecError::Trailing { trailing: 1 })
        ));
    }

    #[test]
    fn truncated_bytes_are_an_error_not_a_panic() {
        let bytes = encode(&vec![String::from("hello"); 4]).expect("encodes");
        for cut in 0..bytes.len() {
            assert!(
                decode::<Vec<String>>(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_chunked_vec_is_stored_as_the_same_bytes_as_a_vec() {
        use boxoffice_domain::ChunkedVec;
        let v: Vec<u32> = (0..5_000).collect();
        let c: ChunkedVec<u32> = v.iter().copied().collect();
        let bytes = encode(&c).expect("encode");
        assert_eq!(bytes, encode(&v).expect("encode"));
        let back: ChunkedVec<u32> = decode(&bytes).expect("decode");
        assert_eq!(back, c);
    }
}
