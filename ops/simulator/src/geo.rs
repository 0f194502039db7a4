//! Coordinates: the WGS-84 → GCJ-02 transform (the obfuscated datum of Chinese web maps) and
//! bounding boxes for generating tracks.
//!
//! The transform is the widely published formula (Krasovsky ellipsoid, a = 6378245 m,
//! e² = 0.00669342162296594323); outside China it is the identity.

use std::f64::consts::PI;

const A: f64 = 6_378_245.0;
const EE: f64 = 0.006_693_421_622_965_943;

/// Whether a WGS-84 point lies in the rough box the GCJ-02 offset applies to.
pub fn in_china(lat: f64, lon: f64) -> bool {
    (72.004..=137.8347).contains(&lon) && (0.8293..=55.8271).contains(&lat)
}

fn transform_lat(x: f64, y: f64) -> f64 {
    let mut r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    r
}

fn transform_lon(x: f64, y: f64) -> f64 {
    let mut r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt();
    r += (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    r += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    r += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    r
}

/// WGS-84 `(lat, lon)` → GCJ-02 `(lat, lon)`; identity outside China.
pub fn wgs84_to_gcj02(lat: f64, lon: f64) -> (f64, f64) {
    if !in_china(lat, lon) {
        return (lat, lon);
    }
    let mut dlat = transform_lat(lon - 105.0, lat - 35.0);
    let mut dlon = transform_lon(lon - 105.0, lat - 35.0);
    let radlat = lat / 180.0 * PI;
    let magic = 1.0 - EE * radlat.sin() * radlat.sin();
    let sqrt_magic = magic.sqrt();
    dlat = (dlat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrt_magic) * PI);
    dlon = (dlon * 180.0) / (A / sqrt_magic * radlat.cos() * PI);
    (lat + dlat, lon + dlon)
}

/// A latitude/longitude box (WGS-84 degrees).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    /// Southern edge.
    pub min_lat: f64,
    /// Western edge.
    pub min_lon: f64,
    /// Northern edge.
    pub max_lat: f64,
    /// Eastern edge.
    pub max_lon: f64,
}

impl BBox {
    /// A box of `half_deg` degrees around a centre.
    pub const fn around(lat: f64, lon: f64, half_deg: f64) -> Self {
        BBox {
            min_lat: lat - half_deg,
            min_lon: lon - half_deg,
            max_lat: lat + half_deg,
            max_lon: lon + half_deg,
        }
    }

    /// Whether the box holds the point.
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lon..=self.max_lon).contains(&lon)
    }
}

/// Metres per degree of latitude (mean).
pub(crate) const M_PER_DEG_LAT: f64 = 111_320.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcj02_known_points() {
        // (wgs lat, wgs lon, gcj lat, gcj lon, tolerance °): published reference values of the
        // formula — Tiananmen from coordtransform's tests (exact), a point near Beijing from an
        // implementation with slightly different constants (≈ 1 cm).
        for (lat, lon, glat, glon, tol) in [
            (39.915, 116.404, 39.91640428150164, 116.41024449916938, 1e-9),
            (40.0, 116.0, 40.001213650174, 116.006141221789, 1e-6),
        ] {
            let (a, b) = wgs84_to_gcj02(lat, lon);
            assert!((a - glat).abs() < tol, "{lat},{lon}: lat {a} != {glat}");
            assert!((b - glon).abs() < tol, "{lat},{lon}: lon {b} != {glon}");
        }
        // Outside China: unchanged.
        assert_eq!(wgs84_to_gcj02(48.85, 2.35), (48.85, 2.35));
        // Kunming: the offset is a few hundred metres.
        let (a, b) = wgs84_to_gcj02(25.04, 102.71);
        let d = ((a - 25.04) * M_PER_DEG_LAT)
            .hypot((b - 102.71) * M_PER_DEG_LAT * 25.04f64.to_radians().cos());
        assert!((100.0..800.0).contains(&d), "{d}");
    }
}
