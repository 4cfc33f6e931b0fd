use rkyv::rancor;

use super::*;

/// The archive of `value`, validated and read in place: what the module sees.
fn archived<T>(value: &T) -> rkyv::util::AlignedVec
where
    T: for<'a> rkyv::Serialize<
        rkyv::api::high::HighSerializer<
            rkyv::util::AlignedVec,
            rkyv::ser::allocator::ArenaHandle<'a>,
            rancor::Error,
        >,
    >,
{
    rkyv::to_bytes::<rancor::Error>(value).expect("archive")
}

#[test]
fn generators_are_deterministic_and_seeded() {
    assert_eq!(generate_logs(7, 50), generate_logs(7, 50));
    assert_ne!(generate_logs(7, 50), generate_logs(8, 50));
    assert_eq!(generate_mesh(7, 50), generate_mesh(7, 50));
    assert_eq!(generate_players(7, 20), generate_players(7, 20));
    assert_ne!(generate_players(7, 20), generate_players(8, 20));
}

#[test]
fn archived_and_owned_checksums_agree() {
    let logs = generate_logs(1, 200);
    let bytes = archived(&logs);
    let view = rkyv::access::<rkyv::Archived<Vec<Log>>, rancor::Error>(&bytes).expect("valid");
    assert_eq!(view.as_slice().checksum(), logs.checksum());

    let mesh = generate_mesh(2, 200);
    let bytes = archived(&mesh);
    let view = rkyv::access::<rkyv::Archived<Vec<Triangle>>, rancor::Error>(&bytes).expect("valid");
    assert_eq!(mesh_sum_archived(view).to_bits(), mesh_sum(&mesh).to_bits());

    let players = generate_players(3, 50);
    let bytes = archived(&players);
    let view = rkyv::access::<rkyv::Archived<Vec<Player>>, rancor::Error>(&bytes).expect("valid");
    assert_eq!(view.as_slice().checksum(), players.checksum());
}

#[test]
fn checksums_see_every_record() {
    let mut logs = generate_logs(1, 100);
    let before = logs.checksum();
    logs[99].size += 1;
    assert_ne!(logs.checksum(), before, "the last record counts");
    let mut players = generate_players(3, 20);
    let before = players.checksum();
    players[19].inventory.push(Item {
        count: 1,
        slot: 2,
        id: "torch".into(),
    });
    assert_ne!(players.checksum(), before, "nested vectors count");
}

#[test]
fn the_sets_have_what_the_benchmarks_need() {
    let players = generate_players(3, 200);
    assert!(players.iter().any(|p| p.root_vehicle.is_some()));
    assert!(players.iter().any(|p| p.root_vehicle.is_none()));
    assert!(players
        .iter()
        .any(|p| matches!(p.dimension, Dimension::Custom(_))));
    assert!(players.iter().any(|p| p.inventory.len() > 20));
}

#[test]
fn bytes_travel_as_one_bin_value() {
    let data = vec![7u8; 300];
    let packed = memlink_abi::msgpack::to_msgpack(&(BytesRef(&data),)).expect("encode");
    // [bin16 of 300 bytes]: one array marker, the bin16 marker and its length, the bytes.
    assert_eq!(&packed[..4], &[0x91, 0xc5, 0x01, 0x2c]);
    assert_eq!(packed.len(), 4 + 300);
    let (back,): (Bytes,) = memlink_abi::msgpack::from_msgpack(&packed).expect("decode");
    assert_eq!(back.0, data);
}

#[test]
fn peek_and_sum_read_what_they_say() {
    let mut buf = vec![0u8; 1000];
    fill_bytes(&mut buf);
    assert_eq!(peek(&buf), (1000, 0, (500 % 251) as u8, (999 % 251) as u8));
    assert_eq!(peek(&[]), (0, 0, 0, 0));
    let expected: u64 = buf.iter().map(|&b| u64::from(b)).sum();
    assert_eq!(byte_sum(&buf), expected);
    let big = vec![255u8; (1 << 17) + 3];
    assert_eq!(byte_sum(&big), 255 * big.len() as u64, "no lane overflows");
}
