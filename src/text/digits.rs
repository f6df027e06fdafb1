//! A number's decimal digits written without `Display`'s formatter, for the two places that
//! write many numbers: the table (every port, queue and inode cell) and `/proc` paths (a pid
//! per process). Both were measured faster without the formatter's padding machinery.

/// The decimal digits of `number`, as `Display` writes them, in the tail of `buf` (`u64::MAX`
/// has 20 digits).
pub fn decimal(number: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut number = number;
    let mut at = buf.len();
    loop {
        at -= 1;
        // The remainder is below 10: a digit.
        buf[at] = b'0' + (number % 10) as u8;
        number /= 10;
        if number == 0 {
            break;
        }
    }
    &buf[at..]
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn digits_are_what_display_writes() {
        for n in [0, 7, 10, 65535, 4026531840, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }
}
