use super::*;

fn ms(v: u64) -> ClockTime {
    ClockTime::from_mseconds(v)
}

fn frame(pts_ms: u64, key: bool) -> gst::Buffer {
    let mut buffer = gst::Buffer::new();
    let b = buffer.get_mut().expect("new buffer");
    b.set_pts(ms(pts_ms));
    if !key {
        b.set_flags(gst::BufferFlags::DELTA_UNIT);
    }
    buffer
}

fn caps() -> gst::Caps {
    gst::Caps::new_empty_simple("video/x-h264")
}

fn alice() -> Source {
    Source::Participant("alice".into())
}

/// Offers a frame and returns the forwarded timestamps (ms).
fn offer(switch: &mut VideoSwitch, from: &Source, pts_ms: u64, key: bool, now_ms: u64) -> (Vec<u64>, Vec<Action>) {
    let outcome = switch.offer(from, frame(pts_ms, key), &caps(), now_ms);
    let forwarded = outcome
        .forward
        .iter()
        .map(|(b, _)| b.pts().unwrap().mseconds())
        .collect();
    (forwarded, outcome.actions)
}

/// A switch that forwards alice (the mixer stalled, so the switch did not wait for it) from 0 ms, last 33 ms.
fn forwarding_alice() -> VideoSwitch {
    let mut switch = VideoSwitch::new(ms(1000));
    switch.switch_to(alice(), 0);
    assert!(
        offer(&mut switch, &alice(), 0, true, 0).0.is_empty(),
        "waits for the mixer"
    );
    assert_eq!(
        offer(&mut switch, &alice(), 33, false, 400).0,
        vec![0, 33],
        "mixer stalled: switched"
    );
    assert_eq!(switch.current(), &alice());
    switch
}

#[test]
fn to_a_participant_at_their_keyframe_once_the_mixer_reaches_it() {
    let _glib = crate::glib_watch::watch();
    let mut switch = VideoSwitch::new(ms(1000));
    assert_eq!(offer(&mut switch, &Source::Mixer, 0, true, 1000).0, vec![0]);
    assert_eq!(
        switch.switch_to(alice(), 1000),
        vec![Action::ParticipantKeyframe("alice".into())]
    );
    assert!(switch.mixer_needed());
    // A delta frame cannot start the stream; the keyframe at 120 sets the cut and waits.
    assert!(offer(&mut switch, &alice(), 90, false, 1010).0.is_empty());
    assert!(offer(&mut switch, &alice(), 120, true, 1020).0.is_empty());
    assert!(offer(&mut switch, &alice(), 153, false, 1040).0.is_empty());
    // The mixer is behind: its frames before the cut still go out.
    assert_eq!(offer(&mut switch, &Source::Mixer, 33, false, 1050).0, vec![33]);
    assert_eq!(offer(&mut switch, &Source::Mixer, 100, false, 1060).0, vec![100]);
    // It reaches the cut: the participant's frames from the keyframe on.
    assert_eq!(offer(&mut switch, &Source::Mixer, 133, false, 1070).0, vec![120, 153]);
    assert_eq!(switch.current(), &alice());
    assert!(!switch.mixer_needed());
    assert_eq!(offer(&mut switch, &alice(), 186, false, 1080).0, vec![186]);
    assert!(offer(&mut switch, &Source::Mixer, 166, false, 1090).0.is_empty());
}

#[test]
fn back_to_the_mixer_at_the_participants_next_keyframe() {
    let _glib = crate::glib_watch::watch();
    let mut switch = forwarding_alice();
    assert_eq!(
        switch.switch_to(Source::Mixer, 500),
        vec![Action::ParticipantKeyframe("alice".into())]
    );
    assert!(switch.mixer_needed());
    assert_eq!(offer(&mut switch, &alice(), 66, false, 510).0, vec![66]);
    // Mixer frames before the cut is known are not used.
    assert!(offer(&mut switch, &Source::Mixer, 50, true, 515).0.is_empty());
    let (forwarded, actions) = offer(&mut switch, &alice(), 100, true, 520);
    assert!(forwarded.is_empty(), "the participant stops at its keyframe");
    assert_eq!(actions, vec![Action::MixerKeyframe(Some(ms(100)))]);
    assert!(offer(&mut switch, &alice(), 133, false, 530).0.is_empty());
    assert!(offer(&mut switch, &Source::Mixer, 83, false, 540).0.is_empty());
    assert_eq!(offer(&mut switch, &Source::Mixer, 116, true, 550).0, vec![116]);
    assert_eq!(switch.current(), &Source::Mixer);
}

#[test]
fn a_participant_gone_quiet_hands_over_to_the_mixer() {
    let _glib = crate::glib_watch::watch();
    let mut switch = forwarding_alice();
    switch.switch_to(Source::Mixer, 1000);
    // No more frames from alice: after the stall time the mixer takes over right after 33 ms.
    let (forwarded, actions) = offer(&mut switch, &Source::Mixer, 20, false, 1100);
    assert!(forwarded.is_empty());
    assert_eq!(actions, vec![Action::MixerKeyframe(None)]);
    assert!(
        offer(&mut switch, &Source::Mixer, 53, false, 1200).0.is_empty(),
        "not a keyframe"
    );
    assert_eq!(offer(&mut switch, &Source::Mixer, 86, true, 1210).0, vec![86]);
    assert_eq!(switch.current(), &Source::Mixer);
}

#[test]
fn a_participant_without_keyframes_is_not_switched_to() {
    let _glib = crate::glib_watch::watch();
    let mut switch = VideoSwitch::new(ms(1000));
    switch.switch_to(alice(), 0);
    let (_, actions) = offer(&mut switch, &alice(), 0, false, 600);
    assert_eq!(
        actions,
        vec![Action::ParticipantKeyframe("alice".into())],
        "asked again"
    );
    offer(&mut switch, &alice(), 33, false, 2100);
    assert_eq!(switch.next(), None);
    assert_eq!(switch.current(), &Source::Mixer);
}

#[test]
fn a_forwarded_participant_is_asked_for_keyframes_at_the_interval() {
    let _glib = crate::glib_watch::watch();
    let mut switch = forwarding_alice();
    let mut asked_at = Vec::new();
    for pts in (66..2500).step_by(33) {
        let (_, actions) = offer(&mut switch, &alice(), pts, false, 400 + pts);
        if actions.contains(&Action::ParticipantKeyframe("alice".into())) {
            asked_at.push(pts);
        }
    }
    assert_eq!(asked_at.first(), Some(&957), "60 ms before the second is up");
    assert!(asked_at.windows(2).all(|w| w[1] - w[0] >= 500), "{asked_at:?}");
}

#[test]
fn from_one_participant_to_another_at_the_second_ones_keyframe() {
    let _glib = crate::glib_watch::watch();
    let bob = Source::Participant("bob".into());
    let mut switch = forwarding_alice();
    assert_eq!(
        switch.switch_to(bob.clone(), 500),
        vec![Action::ParticipantKeyframe("bob".into())]
    );
    assert!(!switch.mixer_needed(), "no encode needed to go from one to the other");
    assert_eq!(offer(&mut switch, &alice(), 66, false, 510).0, vec![66]);
    assert!(
        offer(&mut switch, &bob, 80, true, 515).0.is_empty(),
        "bob's keyframe waits for alice to reach it"
    );
    assert_eq!(offer(&mut switch, &alice(), 99, false, 520).0, vec![80]);
    assert_eq!(switch.current(), &bob);
    assert!(offer(&mut switch, &alice(), 132, false, 530).0.is_empty());
    assert_eq!(offer(&mut switch, &bob, 113, false, 540).0, vec![113]);
}

/// RTMP's FLV has millisecond timestamps: the mixer's last frame 0.4 ms before the participant's first keyframe
/// would share its time there. It is not handed out; one a full millisecond before is.
#[test]
fn no_two_frames_handed_out_less_than_a_millisecond_apart() {
    let _glib = crate::glib_watch::watch();
    let at = |ns: u64, key: bool| {
        let mut buffer = gst::Buffer::new();
        let b = buffer.get_mut().expect("new buffer");
        b.set_pts(ClockTime::from_nseconds(ns));
        if !key {
            b.set_flags(gst::BufferFlags::DELTA_UNIT);
        }
        buffer
    };
    let pts = |outcome: Outcome| -> Vec<u64> {
        outcome
            .forward
            .iter()
            .map(|(b, _)| b.pts().unwrap().nseconds())
            .collect()
    };
    let mut switch = VideoSwitch::new(ms(1000));
    assert_eq!(pts(switch.offer(&Source::Mixer, at(0, true), &caps(), 0)), vec![0]);
    switch.switch_to(alice(), 0);
    // Alice's keyframe at 120 ms sets the cut.
    assert!(pts(switch.offer(&alice(), at(120_000_000, true), &caps(), 10)).is_empty());
    assert_eq!(
        pts(switch.offer(&Source::Mixer, at(119_000_000, false), &caps(), 20)),
        vec![119_000_000],
        "a millisecond before the cut still goes out"
    );
    assert_eq!(
        pts(switch.offer(&Source::Mixer, at(119_600_000, false), &caps(), 30)),
        vec![120_000_000],
        "0.4 ms before the cut does not: the switch happens at alice's keyframe instead"
    );
    assert_eq!(
        pts(switch.offer(&alice(), at(153_000_000, false), &caps(), 50)),
        vec![153_000_000]
    );
}

/// A keyframe of the mixer's 100 ms before the participant's would make a GOP (and an HLS segment) of a few
/// frames: the switch happens before it. One 300 ms before still goes out.
#[test]
fn a_keyframe_just_before_the_cut_is_left_out() {
    let _glib = crate::glib_watch::watch();
    let mut switch = VideoSwitch::new(ms(1000));
    assert_eq!(offer(&mut switch, &Source::Mixer, 0, true, 0).0, vec![0]);
    switch.switch_to(alice(), 0);
    assert!(
        offer(&mut switch, &alice(), 600, true, 10).0.is_empty(),
        "the cut: 600 ms"
    );
    assert_eq!(offer(&mut switch, &Source::Mixer, 300, true, 20).0, vec![300]);
    assert_eq!(offer(&mut switch, &Source::Mixer, 400, false, 30).0, vec![400]);
    assert_eq!(
        offer(&mut switch, &Source::Mixer, 500, true, 40).0,
        vec![600],
        "a keyframe 100 ms before the cut: alice's keyframe goes out instead"
    );
    assert_eq!(switch.current(), &alice());
}

/// The mixer's keyframe comes before the participant's, whose time is not known yet: it is held. Alice's keyframe
/// 100 ms after it drops it (the switch happens before it); with no cut within 150 ms the held frames go out.
#[test]
fn a_keyframe_before_an_unknown_cut_waits_150_ms_for_it() {
    let _glib = crate::glib_watch::watch();
    let mut switch = VideoSwitch::new(ms(1000));
    assert_eq!(offer(&mut switch, &Source::Mixer, 0, true, 0).0, vec![0]);
    switch.switch_to(alice(), 0);
    assert_eq!(offer(&mut switch, &Source::Mixer, 33, false, 10).0, vec![33]);
    assert!(offer(&mut switch, &Source::Mixer, 500, true, 20).0.is_empty(), "held");
    assert!(offer(&mut switch, &Source::Mixer, 533, false, 30).0.is_empty(), "held");
    assert_eq!(
        offer(&mut switch, &alice(), 600, true, 40).0,
        vec![600],
        "alice's keyframe 100 ms after the held one: the switch happens before it"
    );
    assert_eq!(switch.current(), &alice());

    let mut switch = VideoSwitch::new(ms(1000));
    assert_eq!(offer(&mut switch, &Source::Mixer, 0, true, 0).0, vec![0]);
    switch.switch_to(alice(), 0);
    assert!(offer(&mut switch, &Source::Mixer, 500, true, 20).0.is_empty(), "held");
    assert!(offer(&mut switch, &Source::Mixer, 600, false, 30).0.is_empty(), "held");
    assert_eq!(
        offer(&mut switch, &Source::Mixer, 650, false, 40).0,
        vec![500, 600, 650],
        "no cut within 150 ms: handed out"
    );
    assert_eq!(
        offer(&mut switch, &Source::Mixer, 700, false, 50).0,
        vec![700],
        "then frames go out at once"
    );
}
