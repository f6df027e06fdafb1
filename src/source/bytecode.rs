//! A sock_diag port filter: `inet_diag` bytecode (`INET_DIAG_REQ_BYTECODE`) that makes the
//! kernel send only sockets whose local port is in a set, as `ss 'sport = :8080'` does.
//!
//! The program is a chain of blocks, one per port range, each "port >= lo, port <= hi, accept".
//! Every op is `{code: u8, yes: u8, no: u16}`: the kernel moves `yes` bytes ahead when the test
//! holds, `no` bytes otherwise, and accepts a socket when it lands exactly on the end. A failed
//! test in the last block jumps 4 bytes past the end, which rejects. The kernel audits the
//! program (`inet_diag_bc_audit`) by walking the `yes` chain, so every `yes` must lead to the
//! next op and every `no` to an op boundary or past the end.

/// `INET_DIAG_REQ_BYTECODE`: the request attribute that carries the program.
const INET_DIAG_REQ_BYTECODE: u16 = 1;
/// Unconditional jump by `no`.
const INET_DIAG_BC_JMP: u8 = 1;
/// Local port >= the port in the following op's `no`.
const INET_DIAG_BC_S_GE: u8 = 2;
/// Local port <= the port in the following op's `no`.
const INET_DIAG_BC_S_LE: u8 = 3;

/// Size of one op.
const OP: usize = 4;
/// Size of one block: GE + operand, LE + operand, JMP.
const BLOCK: usize = 5 * OP;
/// Beyond this many ranges the filter is left to user space: the program grows by 20 bytes a
/// range and its jumps are 16-bit.
pub const MAX_RANGES: usize = 256;

/// The program accepting sockets whose local port is in one of `ranges` (inclusive), or `None`
/// when there are none or too many to filter in the kernel.
pub fn port_filter(ranges: &[(u16, u16)]) -> Option<Vec<u8>> {
    if ranges.is_empty() || ranges.len() > MAX_RANGES {
        return None;
    }
    let total = ranges.len() * BLOCK;
    let mut program = Vec::with_capacity(total);
    for (index, &(lo, hi)) in ranges.iter().enumerate() {
        let last = index + 1 == ranges.len();
        // From each test, "no" leads to the next block, or past the end in the last one.
        let miss = |offset_in_block: usize| {
            let to_next = BLOCK - offset_in_block;
            if last { to_next + OP } else { to_next }
        };
        push_op(&mut program, INET_DIAG_BC_S_GE, 2 * OP, miss(0));
        push_op(&mut program, 0, 0, usize::from(lo));
        push_op(&mut program, INET_DIAG_BC_S_LE, 2 * OP, miss(2 * OP));
        push_op(&mut program, 0, 0, usize::from(hi));
        // Both tests held: jump to the very end, which accepts.
        let remaining = total - (index * BLOCK + 4 * OP);
        push_op(&mut program, INET_DIAG_BC_JMP, OP, remaining);
    }
    Some(program)
}

fn push_op(program: &mut Vec<u8>, code: u8, yes: usize, no: usize) {
    let yes = u8::try_from(yes).expect("yes offsets are at most 8");
    let no = u16::try_from(no).expect("MAX_RANGES keeps offsets within 16 bits");
    program.push(code);
    program.push(yes);
    program.extend_from_slice(&no.to_ne_bytes());
}

/// Append `program` as an `INET_DIAG_REQ_BYTECODE` attribute to an encoded sock_diag request,
/// fixing the netlink header's length.
pub fn with_program(mut request: Vec<u8>, program: &[u8]) -> Vec<u8> {
    let attribute_len = u16::try_from(OP + program.len()).expect("program fits an attribute");
    request.extend_from_slice(&attribute_len.to_ne_bytes());
    request.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
    request.extend_from_slice(program);
    let total = u32::try_from(request.len()).expect("request fits a netlink message");
    request[..4].copy_from_slice(&total.to_ne_bytes());
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a program the way `inet_diag_bc_run` does, for a socket on `port`.
    fn run(program: &[u8], port: u16) -> bool {
        let mut at = 0usize;
        let mut len = program.len() as isize;
        while len > 0 {
            let op = &program[at..];
            let (code, yes, no) = (op[0], op[1], u16::from_ne_bytes([op[2], op[3]]));
            let operand = || u16::from_ne_bytes([op[6], op[7]]);
            let holds = match code {
                INET_DIAG_BC_JMP => false,
                INET_DIAG_BC_S_GE => port >= operand(),
                INET_DIAG_BC_S_LE => port <= operand(),
                other => panic!("unexpected op {other}"),
            };
            let step = if holds {
                usize::from(yes)
            } else {
                usize::from(no)
            };
            len -= step as isize;
            at += step;
        }
        len == 0
    }

    /// Check a program the way `inet_diag_bc_audit` does.
    fn audit(program: &[u8]) -> bool {
        let mut at = 0usize;
        let mut len = program.len() as isize;
        while len > 0 {
            let op = &program[at..];
            let (code, yes, no) = (
                op[0],
                op[1] as isize,
                u16::from_ne_bytes([op[2], op[3]]) as isize,
            );
            let min_len = if code == INET_DIAG_BC_JMP { 4 } else { 8 };
            if len < min_len || no < min_len || no > len + 4 || no & 3 != 0 {
                return false;
            }
            if no < len && !on_yes_chain(program, len - no) {
                return false;
            }
            if yes < min_len || yes > len + 4 || yes & 3 != 0 {
                return false;
            }
            at += yes as usize;
            len -= yes;
        }
        len == 0
    }

    /// `valid_cc`: is "`remaining` bytes left" an op boundary on the `yes` chain?
    fn on_yes_chain(program: &[u8], remaining: isize) -> bool {
        let mut at = 0usize;
        let mut len = program.len() as isize;
        while len >= 0 {
            if remaining > len {
                return false;
            }
            if remaining == len {
                return true;
            }
            let yes = program[at + 1] as isize;
            at += yes as usize;
            len -= yes;
        }
        false
    }

    #[test]
    fn one_port() {
        let program = port_filter(&[(8080, 8080)]).unwrap();
        assert!(audit(&program));
        assert!(run(&program, 8080));
        assert!(!run(&program, 8079) && !run(&program, 8081) && !run(&program, 0));
    }

    #[test]
    fn several_ranges() {
        let ranges = [(22, 22), (80, 81), (8000, 8100), (65535, 65535)];
        let program = port_filter(&ranges).unwrap();
        assert_eq!(program.len(), ranges.len() * BLOCK);
        assert!(audit(&program));
        for port in 0..=u16::MAX {
            let wanted = ranges.iter().any(|&(lo, hi)| lo <= port && port <= hi);
            assert_eq!(run(&program, port), wanted, "port {port}");
        }
    }

    #[test]
    fn the_largest_program_passes_the_audit() {
        let ranges: Vec<(u16, u16)> = (0..MAX_RANGES as u16)
            .map(|i| (i * 10, i * 10 + 1))
            .collect();
        let program = port_filter(&ranges).unwrap();
        assert!(audit(&program));
        assert!(run(&program, 2551) && !run(&program, 2552));
        let too_many: Vec<(u16, u16)> = (0..=MAX_RANGES as u16).map(|i| (i * 3, i * 3)).collect();
        assert_eq!(port_filter(&too_many), None);
        assert_eq!(port_filter(&[]), None);
    }

    #[test]
    fn attribute_is_appended_and_length_fixed() {
        let mut request = vec![0u8; 72];
        request[..4].copy_from_slice(&72u32.to_ne_bytes());
        let program = port_filter(&[(1, 2)]).unwrap();
        let full = with_program(request, &program);
        assert_eq!(full.len(), 72 + 4 + 20);
        assert_eq!(u32::from_ne_bytes(full[..4].try_into().unwrap()), 96);
        assert_eq!(u16::from_ne_bytes([full[72], full[73]]), 24);
        assert_eq!(
            u16::from_ne_bytes([full[74], full[75]]),
            INET_DIAG_REQ_BYTECODE
        );
        assert_eq!(&full[76..], &program[..]);
    }
}
