//! The generator of the synthetic taxi CSV, with no dependency beyond std,
//! so dask-dataframe's tests include this very file (`#[path]`) and test on
//! the same data the benchmark reads.

use std::io::Write;

/// The header of `yellow_tripdata_2020-01.csv`.
pub const HEADER: &str = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,\
trip_distance,RatecodeID,store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,\
extra,mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount,congestion_surcharge";

/// Rows of the real file (6,405,008): the default.
pub const DEFAULT_ROWS: u64 = 6_405_008;

/// The default seed.
pub const DEFAULT_SEED: u64 = 2020;

/// SplitMix64: a small, fast, seeded generator (no dependency needed).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi].
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// Picks a value by cumulative weights (the last weight catches the rest).
    fn pick<T: Copy>(&mut self, table: &[(f64, T)]) -> T {
        let mut u = self.f64();
        for &(p, v) in table {
            if u < p {
                return v;
            }
            u -= p;
        }
        table[table.len() - 1].1
    }
}

/// Busy zones (Manhattan and the airports), drawn more often than the rest.
const HOT_ZONES: &[u64] = &[
    236, 237, 161, 162, 170, 186, 48, 234, 142, 132, 239, 141, 230, 68, 79, 138, 264, 107, 163, 113,
];

/// Seconds in January 2020.
const MONTH_SECS: u64 = 31 * 86_400;

/// Writes the header and `rows` rows.
pub fn write_csv(w: &mut impl Write, rows: u64, seed: u64) -> std::io::Result<()> {
    writeln!(w, "{HEADER}")?;
    let mut rng = Rng(seed);
    // Like the real file: the last ~1% of rows lack the vendor's fields.
    let missing_from = rows - rows / 100;
    for i in 0..rows {
        write_row(w, &mut rng, i, rows, i >= missing_from)?;
    }
    Ok(())
}

fn write_row(
    w: &mut impl Write,
    rng: &mut Rng,
    i: u64,
    rows: u64,
    missing: bool,
) -> std::io::Result<()> {
    let pickup = i * MONTH_SECS / rows.max(1) + rng.range(0, 59);
    let distance = (-rng.f64().max(1e-12).ln() * 2.9 * 100.0).round() / 100.0;
    let minutes = distance * 3.2 + rng.f64() * 8.0 + 1.0;
    let dropoff = pickup + (minutes * 60.0) as u64;
    let ratecode: u64 = rng.pick(&[
        (0.965, 1),
        (0.022, 2),
        (0.003, 3),
        (0.002, 4),
        (0.007, 5),
        (0.001, 99),
    ]);
    let payment: u64 = rng.pick(&[(0.72, 1), (0.265, 2), (0.01, 3), (0.005, 4)]);
    let passengers: u64 = rng.pick(&[
        (0.70, 1),
        (0.15, 2),
        (0.04, 3),
        (0.02, 4),
        (0.04, 5),
        (0.03, 6),
        (0.02, 0),
    ]);
    let zone = |rng: &mut Rng| {
        if rng.f64() < 0.6 {
            HOT_ZONES[rng.range(0, HOT_ZONES.len() as u64 - 1) as usize]
        } else {
            rng.range(1, 265)
        }
    };
    let (pu, dl) = (zone(rng), zone(rng));
    let fare = if ratecode == 2 {
        52.0
    } else {
        ((2.5 + 2.5 * distance + 0.35 * minutes) * 2.0).round() / 2.0
    };
    let congestion = if rng.f64() < 0.87 { 2.5 } else { 0.0 };
    let extra = rng.pick(&[
        (0.35, 0.0),
        (0.3, 0.5),
        (0.1, 1.0),
        (0.25, congestion + 0.5),
    ]);
    let mta = if rng.f64() < 0.98 { 0.5 } else { 0.0 };
    let tolls = if rng.f64() < 0.05 { 6.12 } else { 0.0 };
    let tip = if payment == 1 {
        ((fare + extra) * (0.12 + rng.f64() * 0.16) * 100.0).round() / 100.0
    } else {
        0.0
    };
    let surcharge = 0.3;
    let total = fare + extra + mta + tip + tolls + surcharge + congestion;
    if missing {
        write!(w, ",")?;
    } else {
        write!(w, "{},", if rng.f64() < 0.3 { 1 } else { 2 })?;
    }
    write_time(w, pickup)?;
    w.write_all(b",")?;
    write_time(w, dropoff)?;
    if missing {
        write!(w, ",,{distance:.2},,,")?;
    } else {
        let flag = if rng.f64() < 0.99 { 'N' } else { 'Y' };
        write!(w, ",{passengers},{distance:.2},{ratecode},{flag},")?;
    }
    write!(w, "{pu},{dl},")?;
    if !missing {
        write!(w, "{payment}")?;
    }
    for amount in [fare, extra, mta, tip, tolls, surcharge, total] {
        w.write_all(b",")?;
        write_amount(w, amount)?;
    }
    w.write_all(b",")?;
    write_amount(w, congestion)?;
    w.write_all(b"\n")
}

/// `2020-01-05 13:04:59` for `secs` after 2020-01-01 00:00:00 (January or
/// February: a trip may end after the month).
fn write_time(w: &mut impl Write, secs: u64) -> std::io::Result<()> {
    let day = secs / 86_400;
    let (month, mday) = if day < 31 {
        (1, day + 1)
    } else {
        (2, day - 30)
    };
    let s = secs % 86_400;
    write!(
        w,
        "2020-{month:02}-{mday:02} {:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// An amount as the real file writes it: `6`, `0.5`, `11.27`.
fn write_amount(w: &mut impl Write, x: f64) -> std::io::Result<()> {
    let cents = (x * 100.0).round() as i64;
    if cents % 100 == 0 {
        write!(w, "{}", cents / 100)
    } else if cents % 10 == 0 {
        write!(w, "{:.1}", cents as f64 / 100.0)
    } else {
        write!(w, "{:.2}", cents as f64 / 100.0)
    }
}
