//! An HLS output's `renditions`, validated against the broadcast's picture into an `output::hls_ladder::Ladder`.

use super::request::RenditionRequest;
use super::spec::{SpecError, VideoSpec};
use crate::output::hls_ladder::{Ladder, MainPicture, Rendition, BITRATE_KBPS, MAX_RENDITIONS, MIN_HEIGHT};

/// What an output's validation needs of its broadcast: the picture (None: audio-only) and the AAC bitrate.
#[derive(Debug, Clone, Copy)]
pub struct BroadcastMedia<'a> {
    pub video: Option<&'a VideoSpec>,
    pub audio_kbps: u32,
}

/// None when no rendition is asked for (the output stays a single media playlist). `prefix` names the output
/// in errors (`outputs[1].`).
pub fn validate(
    prefix: &str,
    renditions: Vec<RenditionRequest>,
    upload: bool,
    media: BroadcastMedia<'_>,
) -> Result<Option<Ladder>, SpecError> {
    if renditions.is_empty() {
        return Ok(None);
    }
    let field = format!("{prefix}renditions");
    let Some(video) = media.video else {
        return Err(SpecError::new(field, "an audio-only broadcast has no picture to scale"));
    };
    if renditions.len() > MAX_RENDITIONS {
        return Err(SpecError::new(field, format!("at most {MAX_RENDITIONS} renditions")));
    }
    if upload {
        return Err(SpecError::new(
            field,
            "renditions are not uploaded yet: not with upload",
        ));
    }
    let mut checked: Vec<Rendition> = Vec::with_capacity(renditions.len());
    for (j, r) in renditions.into_iter().enumerate() {
        let height_field = format!("{field}[{j}].height");
        if r.height % 2 != 0 {
            return Err(SpecError::new(height_field, format!("must be even, got {}", r.height)));
        }
        if r.height < MIN_HEIGHT || r.height >= video.height {
            return Err(SpecError::new(
                height_field,
                format!(
                    "must be at least {MIN_HEIGHT} and below the broadcast's height ({}), got {}",
                    video.height, r.height
                ),
            ));
        }
        if checked.iter().any(|c| c.height == r.height) {
            return Err(SpecError::new(height_field, "another rendition has this height"));
        }
        if !BITRATE_KBPS.contains(&r.bitrate_kbps) {
            return Err(SpecError::new(
                format!("{field}[{j}].bitrate_kbps"),
                format!(
                    "must be between {} and {}, got {}",
                    BITRATE_KBPS.start(),
                    BITRATE_KBPS.end(),
                    r.bitrate_kbps
                ),
            ));
        }
        checked.push(Rendition {
            height: r.height,
            bitrate_kbps: r.bitrate_kbps,
        });
    }
    checked.sort_by_key(|r| std::cmp::Reverse(r.height));
    Ok(Some(Ladder {
        main: MainPicture {
            width: video.width,
            height: video.height,
            fps: video.fps,
            bitrate_kbps: video.bitrate_kbps,
        },
        audio_kbps: media.audio_kbps,
        renditions: checked,
    }))
}

#[cfg(test)]
mod tests {
    use super::{validate, BroadcastMedia};
    use crate::broadcast::request::RenditionRequest;
    use crate::broadcast::spec::VideoSpec;

    fn video() -> VideoSpec {
        VideoSpec {
            width: 1280,
            height: 720,
            fps: 30,
            bitrate_kbps: 2500,
            keyframe_interval_s: 2,
            preset: Default::default(),
            passthrough: true,
        }
    }

    fn asked(list: &[(u32, u32)]) -> Vec<RenditionRequest> {
        list.iter()
            .map(|&(height, bitrate_kbps)| RenditionRequest { height, bitrate_kbps })
            .collect()
    }

    fn field(list: &[(u32, u32)], upload: bool) -> String {
        let v = video();
        let media = BroadcastMedia {
            video: Some(&v),
            audio_kbps: 128,
        };
        validate("outputs[1].", asked(list), upload, media).unwrap_err().field
    }

    #[test]
    fn each_refusal_names_its_field() {
        assert_eq!(
            field(&[(360, 800), (361, 500)], false),
            "outputs[1].renditions[1].height"
        );
        assert_eq!(
            field(&[(720, 800)], false),
            "outputs[1].renditions[0].height",
            "not below"
        );
        assert_eq!(
            field(&[(80, 800)], false),
            "outputs[1].renditions[0].height",
            "too small"
        );
        assert_eq!(
            field(&[(360, 800), (360, 400)], false),
            "outputs[1].renditions[1].height"
        );
        assert_eq!(field(&[(360, 99)], false), "outputs[1].renditions[0].bitrate_kbps");
        assert_eq!(field(&[(360, 20_001)], false), "outputs[1].renditions[0].bitrate_kbps");
        assert_eq!(field(&[(100, 200); 5], false), "outputs[1].renditions", "too many");
        assert_eq!(field(&[(360, 800)], true), "outputs[1].renditions", "with upload");
        let none = BroadcastMedia {
            video: None,
            audio_kbps: 128,
        };
        let e = validate("", asked(&[(360, 800)]), false, none).unwrap_err();
        assert_eq!(e.field, "renditions", "audio-only");
    }

    #[test]
    fn a_ladder_is_listed_highest_first_with_the_main_picture() {
        let v = video();
        let media = BroadcastMedia {
            video: Some(&v),
            audio_kbps: 96,
        };
        let ladder = validate("", asked(&[(240, 400), (480, 1200)]), false, media)
            .unwrap()
            .unwrap();
        let heights: Vec<u32> = ladder.renditions.iter().map(|r| r.height).collect();
        assert_eq!(heights, [480, 240]);
        assert_eq!(
            (ladder.main.width, ladder.main.height, ladder.audio_kbps),
            (1280, 720, 96)
        );
        assert!(validate("", Vec::new(), true, media).unwrap().is_none());
    }
}
