//! The protobuf wire format, read-only: varints, and the tag/value pairs of one message.
//!
//! Only what Kubernetes' generated messages use: wire type 0 (varint: ints, bools) and 2
//! (length-delimited: strings, bytes, nested messages, map entries). Kubernetes emits no
//! fixed-width, group or packed fields, so those are refused rather than skipped.

/// Wire type 0: ints and bools.
pub const VARINT: u8 = 0;
/// Wire type 2: strings, bytes, nested messages and map entries.
pub const LEN: u8 = 2;

/// One field as it arrived: its number and its raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Len(&'a [u8]),
}

impl Value<'_> {
    pub fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => VARINT,
            Value::Len(_) => LEN,
        }
    }
}

/// Iterates the fields of one message, in wire order (repeated fields arrive one entry each).
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let start = self.pos;
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(format!("a varint starting at byte {start} is truncated"));
            };
            self.pos += 1;
            // The tenth byte may only carry the top bit of a u64.
            if shift == 63 && byte > 1 {
                return Err(format!("the varint at byte {start} overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("the varint at byte {start} overflows 64 bits"))
    }

    fn field(&mut self) -> Result<(u32, Value<'a>), String> {
        let at = self.pos;
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(format!("invalid field number {number} at byte {at}"));
        }
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(self.varint()?),
            LEN => {
                let len = self.varint()?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|len| self.pos.checked_add(len))
                    .filter(|&end| end <= self.buf.len())
                    .ok_or_else(|| {
                        format!(
                            "field {number} at byte {at} claims {len} bytes but only {} remain",
                            self.buf.len() - self.pos
                        )
                    })?;
                let bytes = &self.buf[self.pos..end];
                self.pos = end;
                Value::Len(bytes)
            }
            other => {
                return Err(format!(
                    "field {number} at byte {at} has wire type {other}, which Kubernetes messages never use"
                ));
            }
        };
        Ok((number as u32, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let item = self.field();
        if item.is_err() {
            // Nothing after a malformed field can be trusted; stop there.
            self.pos = self.buf.len();
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(buf: &[u8]) -> Result<Vec<(u32, Value<'_>)>, String> {
        Fields::new(buf).collect()
    }

    #[test]
    fn reads_varints_and_length_delimited_fields() {
        // field 1 varint 300; field 2 "hi"; field 7 varint 1
        let buf = [0x08, 0xac, 0x02, 0x12, 0x02, b'h', b'i', 0x38, 0x01];
        assert_eq!(
            all(&buf).unwrap(),
            vec![
                (1, Value::Varint(300)),
                (2, Value::Len(b"hi")),
                (7, Value::Varint(1))
            ]
        );
    }

    #[test]
    fn reads_the_largest_varint() {
        let mut buf = vec![0x08];
        buf.extend([0xff; 9]);
        buf.push(0x01);
        assert_eq!(all(&buf).unwrap(), vec![(1, Value::Varint(u64::MAX))]);
    }

    #[test]
    fn refuses_malformed_input() {
        let err = all(&[0x12, 0x05, b'a']).unwrap_err();
        assert!(err.contains("claims 5 bytes but only 1 remain"), "{err}");
        let err = all(&[0x08, 0x80]).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        let err = all(&[0x0d, 0, 0, 0, 0]).unwrap_err();
        assert!(err.contains("wire type 5"), "{err}");
        let err = all(&[0x00, 0x01]).unwrap_err();
        assert!(err.contains("invalid field number 0"), "{err}");
        let mut overflow = vec![0x08];
        overflow.extend([0xff; 10]);
        overflow.push(0x01);
        assert!(all(&overflow).unwrap_err().contains("overflows"));
    }
}
